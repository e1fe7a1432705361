package qmail

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"block-forged-sender/internal/testenv"
)

// runScriptLimit is the memory limit of the qmail-smtpd run script of the 2004 setup guide
// this program descends from ("to run the whole pipeline"): softlimit -m 15000000 around
// tcpserver. BFS_QMAIL_SOFTLIMIT sets another (to bisect, or to prove the harness with a
// limit that anything meets).
func runScriptLimit(t testing.TB) int64 {
	if s := os.Getenv("BFS_QMAIL_SOFTLIMIT"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			t.Fatalf("BFS_QMAIL_SOFTLIMIT=%q: want a number of bytes", s)
		}
		return n
	}
	return 15000000
}

// A mode is how QMAILQUEUE runs the program.
type mode struct {
	name string
	// qmailqueue returns the QMAILQUEUE value for a test in dir.
	qmailqueue func(t testing.TB, h *qmailHome, dir string) string
}

var modes = []mode{
	{"queue", func(t testing.TB, h *qmailHome, dir string) string {
		return filepath.Join(h.bin, "block-forged-sender-queue")
	}},
	{"qfilter", func(t testing.TB, h *qmailHome, dir string) string {
		return h.wrapper(t, dir, testenv.Snippet(t, "qmail-qfilter-wrapper"), h.bin)
	}},
}

// wrapper writes the README's qmail-qfilter wrapper script to dir, with the README's
// paths replaced by the private home's and bin (where block-forged-sender is), and returns
// its path.
func (h *qmailHome) wrapper(t testing.TB, dir, snippet, bin string) string {
	t.Helper()
	path := filepath.Join(dir, "qmail-qfilter-bfs")
	text := strings.NewReplacer("/usr/local/bin", bin, "/var/qmail", h.dir).Replace(snippet)
	if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// The addresses of the tests' messages.
const (
	partner = "priya.raman@northwind-traders.example" // legitimate
	ceo     = "ceo@acme-corp.example"                 // ours: forged when it comes from outside
	cfo     = "cfo@acme-corp.example"
	lure    = "bounce@lure-mailer.example" // a forger's envelope sender
)

// rejected is the client's reply to a message refused by testRules' first rule.
const rejected = "554 " + testReason + " (#5.7.1)"

// A qcase is one SMTP transaction and what must come of it.
type qcase struct {
	name string
	// line is the tcp.smtp line for 127.0.0.1, beside the catch-all ":allow,QMAILQUEUE=...";
	// in it, QMAILQUEUE stands for the mode's QMAILQUEUE="...".
	line    string
	sender  string
	from    string            // the From: field's value
	size    int               // the message is padded to this many bytes
	vanish  bool              // the client disconnects halfway through the message
	reply   string            // the exact reply to the final dot; "250" for any "250 ok TIME qp PID"
	log     map[string]string // the fields of the program's one log line; nil: no line
	qfilter map[string]string // log under qmail-qfilter, where it differs from log
}

var qcases = []qcase{
	{name: "legitimate", sender: partner, from: "Priya Raman <" + partner + ">",
		reply: "250", log: map[string]string{"verdict": "pass", "exit": "0"}},
	{name: "forged From", sender: lure, from: "CEO <" + ceo + ">",
		reply: rejected, log: map[string]string{"verdict": "reject", "exit": "82", "reason": testReason}},
	{name: "forged envelope sender", sender: ceo, from: "Priya Raman <" + partner + ">",
		reply: rejected, log: map[string]string{"verdict": "reject", "exit": "82", "reason": testReason}},
	{name: "relay client", line: `127.0.0.1:allow,RELAYCLIENT="",QMAILQUEUE`, sender: lure, from: ceo,
		reply: "250", log: map[string]string{"verdict": "pass", "exit": "0", "trusted": "relayclient"}},
	{name: "BFS_ALLOW from tcprules", line: `127.0.0.1:allow,QMAILQUEUE,BFS_ALLOW="` + ceo + `"`, sender: lure, from: ceo,
		reply: "250", log: map[string]string{"verdict": "pass", "exit": "0"}},
	{name: "BFS_ALLOW covers only its address", line: `127.0.0.1:allow,QMAILQUEUE,BFS_ALLOW="` + ceo + `"`, sender: lure, from: cfo,
		reply: rejected, log: map[string]string{"verdict": "reject", "exit": "82", "reason": testReason}},
	{name: "BFS_MODE monitor from tcprules", line: `127.0.0.1:allow,QMAILQUEUE,BFS_MODE="monitor"`, sender: lure, from: ceo,
		reply: "250", log: map[string]string{"verdict": "pass", "exit": "0", "mode": "monitor", "monitor": "would reject"}},
	// Past DATABYTES qmail-smtpd still runs the queue program, with the message cut short
	// and an empty envelope, and answers 552 whatever it returns. So it does when the client
	// vanishes. qmail-qfilter then stops at the empty envelope: the filter never runs.
	{name: "DATABYTES exceeded", line: `127.0.0.1:allow,QMAILQUEUE,DATABYTES="2000"`, sender: partner, from: partner, size: 4096,
		reply: "552 sorry, that message size exceeds my databytes limit (#5.3.4)",
		log:   map[string]string{"verdict": "tempfail", "exit": "91"}, qfilter: map[string]string{}},
	{name: "client vanishes mid-DATA", sender: partner, from: partner, size: 8192, vanish: true,
		log: map[string]string{"verdict": "tempfail", "exit": "91"}, qfilter: map[string]string{}},
	{name: "rules missing", line: `127.0.0.1:allow,QMAILQUEUE,BFS_RULES="/nonexistent/badsenders"`, sender: partner, from: partner,
		reply: "451 qq unable to read configuration (#4.3.0)", log: map[string]string{"verdict": "tempfail", "exit": "55"}},
}

// TestQmail sends each case through a real qmail-smtpd in both modes, without a memory
// limit and under the run script's softlimit.
func TestQmail(t *testing.T) {
	h := needQmail(t)
	limits := []int64{0, runScriptLimit(t)}
	for _, limit := range limits {
		lname := "nolimit"
		if limit > 0 {
			lname = "softlimit-m" + strconv.FormatInt(limit, 10)
		}
		t.Run(lname, func(t *testing.T) {
			if limit > 0 {
				testenv.RequireTools(t, "softlimit")
			}
			for _, md := range modes {
				t.Run(md.name, func(t *testing.T) {
					for _, c := range qcases {
						t.Run(c.name, func(t *testing.T) {
							t.Parallel()
							h.runCase(t, md, c, limit)
						})
					}
				})
			}
		})
	}
}

func (h *qmailHome) runCase(t *testing.T, md mode, c qcase, limit int64) {
	dir := h.caseDir(t)
	qq := `QMAILQUEUE="` + md.qmailqueue(t, h, dir) + `"`
	var rules string
	if c.line != "" {
		rules = strings.Replace(c.line, "QMAILQUEUE", qq, 1) + "\n"
	}
	rules += ":allow," + qq + "\n"
	s := h.startServer(t, dir, serverOpts{tcpsmtp: rules, softlimit: limit})
	id := fmt.Sprintf("case-%s@northwind-traders.example", filepath.Base(dir))
	m := mail{sender: c.sender, data: message(c.from, id, c.size)}
	want := c.log
	if md.name == "qfilter" && c.qfilter != nil {
		want = c.qfilter
	}
	r := h.transaction(t, s, "", m, id, c.vanish, c.reply, want)
	// qmail-qfilter execs qmail-queue: the pid qmail-smtpd names is qmail-queue's.
	if qp := qpReply.FindStringSubmatch(r.reply); md.name == "qfilter" && qp != nil && qp[1] != strconv.Itoa(r.queuePid) {
		t.Errorf("reply %q names qp %s; qmail-queue's Received line says %d", r.reply, qp[1], r.queuePid)
	}
	// In queue mode qmail-smtpd runs us: its qp is our pid, which our log line names, so an
	// admin can tie the two.
	if qp := qpReply.FindStringSubmatch(r.reply); md.name == "queue" && qp != nil && r.logPid != qp[1] {
		t.Errorf("reply %q names qp %s; our log line says pid=%s", r.reply, qp[1], r.logPid)
	}
	if t.Failed() {
		t.Logf("tcp.smtp:\n%sserver log:\n%s", rules, s.logText(t))
	}
}
