// Package verdicts checks that the four ways a message meets the policy give one verdict:
// filter (qmail-qfilter), queue (QMAILQUEUE, in front of a recording qmail-queue), check,
// and the milter daemon, driven by a milter client as Postfix drives it. It runs the
// programs as make build builds them, over every case of the shared corpus
// (../shared/corpus), the project's hostile corpus and the verdict fuzzer's seeds.
//
// A milter sees the header only as its MTA delimits it: Postfix and Sendmail end the header
// at the first line that is not a field. So the milter is fed the fields of the header an MTA
// would pass on, and the qmail modes and check are given that same header as the MTA would
// store it; for a message whose header is already so, that is the message itself. The qmail
// modes see more of a message than any MTA passes a milter, and must then refuse whenever the
// stored form is refused.
package verdicts

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	lib "github.com/d--j/go-milter"

	"block-forged-sender/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// tcase is one message with its envelope.
type tcase struct {
	name   string
	sender string // "" is <>
	relay  bool
	msg    []byte
}

// corpus is a set of cases with their rules and envelope.
type corpus struct {
	name, rules, rcpt, defaultHost string
	cases                          []tcase
}

func readTSV(t *testing.T, dir string) []tcase {
	t.Helper()
	tsv, err := os.ReadFile(filepath.Join(dir, "cases.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []tcase
	for _, line := range strings.Split(string(tsv), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		msg, err := os.ReadFile(filepath.Join(dir, f[0]+".eml"))
		if err != nil {
			continue // the shared corpus generates its big messages at run time
		}
		c := tcase{name: f[0], sender: f[1], relay: f[2] == "yes", msg: msg}
		if c.sender == "<>" {
			c.sender = ""
		}
		cases = append(cases, c)
	}
	return cases
}

// fuzzSeeds reads the verdict fuzzer's seed messages (go test fuzz v1 files).
func fuzzSeeds(t *testing.T, dir string) []tcase {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*"))
	var cases []tcase
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a fuzz seed", p)
		}
		msg, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		cases = append(cases, tcase{name: "fuzz-" + filepath.Base(p), sender: "anna@partner.example", msg: []byte(msg)})
	}
	return cases
}

func corpora(t *testing.T) []corpus {
	root := testenv.Root()
	shared := filepath.Join(root, "..", "shared", "corpus")
	if _, err := os.Stat(filepath.Join(shared, "cases.tsv")); err != nil {
		testenv.CannotRun(t, "the shared corpus is not at %s", shared)
	}
	hostile := filepath.Join(root, "cmd", "block-forged-sender", "testdata", "hostile")
	return []corpus{
		{"shared", filepath.Join(shared, "badsenders"), "frontoffice@acme-corp.example", "acme-corp.example", readTSV(t, shared)},
		{"hostile", filepath.Join(hostile, "badsenders"), "frontoffice@ours.example", "ours.example", readTSV(t, hostile)},
		{"fuzz", filepath.Join(hostile, "badsenders"), "sales@ours.example", "ours.example",
			fuzzSeeds(t, filepath.Join(root, "cmd", "block-forged-sender", "testdata", "fuzz", "FuzzVerdict"))},
	}
}

// verdict is "pass", "reject" or "tempfail", from an exit code or a milter reply.
func qmailVerdict(code int) string {
	switch code {
	case 0:
		return "pass"
	case 31, 82:
		return "reject"
	}
	return "tempfail " + strconv.Itoa(code)
}

func TestSameVerdict(t *testing.T) {
	bin := testenv.Binaries(t)
	for _, co := range corpora(t) {
		rules := filepath.Join(t.TempDir(), "badsenders")
		text, err := os.ReadFile(co.rules)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(rules, text, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(filepath.Join(bin, "block-forged-sender"), "compile", rules).CombinedOutput(); err != nil {
			t.Fatalf("compile: %v\n%s", err, out)
		}
		socket := startMilter(t, bin, rules, co.defaultHost)
		queue := recorder(t)
		for _, c := range co.cases {
			t.Run(co.name+"/"+c.name, func(t *testing.T) {
				env := []string{"PATH=" + os.Getenv("PATH"), "BFS_RULES=" + rules, "BFS_DEFAULTHOST=" + co.defaultHost,
					"BFS_QMAILCONTROL=" + t.TempDir(), "TCPREMOTEIP=" + clientIP(c)}
				if c.relay {
					env = append(env, "RELAYCLIENT=")
				}
				fields, stored := mtaHeader(c.msg)
				filter := runFilter(t, bin, env, c, co.rcpt, stored)
				queued := runQueue(t, bin, env, queue, c, co.rcpt, stored)
				check := runCheck(t, bin, env, c, co.rcpt, stored)
				milter := runMilter(t, socket, c, co.rcpt, fields)
				if filter != queued || filter != check || filter != milter {
					t.Errorf("verdicts differ on the header as an MTA passes it: filter %s, queue %s, check %s, milter %s\n%q",
						filter, queued, check, milter, stored)
				}
				if !bytes.Equal(stored, c.msg) {
					// The whole message: the qmail modes read more than any MTA passes on,
					// and never less.
					whole := runFilter(t, bin, env, c, co.rcpt, c.msg)
					if whole != runQueue(t, bin, env, queue, c, co.rcpt, c.msg) || whole != runCheck(t, bin, env, c, co.rcpt, c.msg) {
						t.Errorf("filter, queue and check differ on the message as sent")
					}
					if filter == "reject" && whole != "reject" {
						t.Errorf("the stored form is rejected (%s), the message as sent is %s", filter, whole)
					}
				}
			})
		}
	}
}

// clientIP is the client a case comes from; the milter trusts relay clients by network, as
// tcprules' RELAYCLIENT does.
func clientIP(c tcase) string {
	if c.relay {
		return "10.0.0.7"
	}
	return "203.0.113.66"
}

func envelope(c tcase, rcpt string) []byte {
	return []byte("F" + c.sender + "\x00T" + rcpt + "\x00\x00")
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

func runFilter(t *testing.T, bin string, env []string, c tcase, rcpt string, msg []byte) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "block-forged-sender"), "filter")
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(msg)
	var out bytes.Buffer
	cmd.Stdout = &out
	fd3 := tempFile(t, envelope(c, rcpt))
	cmd.ExtraFiles = []*os.File{fd3}
	v := qmailVerdict(exitCode(t, cmd.Run()))
	if v == "pass" && !bytes.Equal(out.Bytes(), msg) {
		t.Errorf("filter passed the message changed")
	}
	return v
}

func runQueue(t *testing.T, bin string, env []string, queue string, c tcase, rcpt string, msg []byte) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "block-forged-sender-queue"))
	cmd.Env = append(env, "BFS_QMAILQUEUE="+queue, "RECORD="+dir)
	cmd.Stdin = bytes.NewReader(msg)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = r
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Write(envelope(c, rcpt))
	w.Close()
	v := qmailVerdict(exitCode(t, cmd.Wait()))
	queued, _ := os.ReadFile(filepath.Join(dir, "message"))
	if v == "pass" && !bytes.Equal(queued, msg) {
		t.Errorf("queue mode queued the message changed (%d bytes of %d)", len(queued), len(msg))
	}
	if v != "pass" && queued != nil {
		t.Errorf("queue mode gave qmail-queue an envelope for a message it did not pass")
	}
	return v
}

func runCheck(t *testing.T, bin string, env []string, c tcase, rcpt string, msg []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "msg.eml")
	if err := os.WriteFile(file, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	sender := c.sender
	if sender == "" {
		sender = "<>"
	}
	cmd := exec.Command(filepath.Join(bin, "block-forged-sender"), "check", "--sender", sender, "--rcpt", rcpt, file)
	cmd.Env = env
	out, err := cmd.Output()
	switch code := exitCode(t, err); code {
	case 0:
		return "pass"
	case 1:
		return "reject"
	default:
		return fmt.Sprintf("tempfail (check %d: %s)", code, out)
	}
}

// recorder is a stand-in for qmail-queue: it keeps the message and, only when it gets a
// complete envelope on fd 1, the envelope, in $RECORD.
func recorder(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "qmail-queue")
	// queue mode closes fd 1 without a byte to refuse a message, and writes the whole
	// envelope to pass it.
	script := "#!/bin/sh\ncat > \"$RECORD/tmp\" || exit 54\ncat <&1 > \"$RECORD/env\" || exit 54\n" +
		"[ -s \"$RECORD/env\" ] || exit 54\nmv \"$RECORD/tmp\" \"$RECORD/message\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func tempFile(t *testing.T, b []byte) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "fd")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b)
	f.Seek(0, 0)
	t.Cleanup(func() { f.Close() })
	return f
}

// mtaHeader splits msg the way Postfix and Sendmail pass a header to a milter: lines end at
// LF (a CR before it dropped), a line is cut at a NUL (which no milter packet can carry;
// Postfix cuts there, in the mailbox too), an indented line continues the field before it, and the
// header ends at the empty line or at the first line that is not a field (which the MTA
// then stores as the first line of the body, after an empty line it inserts). It returns
// the fields (name, value after the colon with its folds, LF line ends) and the message as
// the MTA would store it.
func mtaHeader(msg []byte) (fields [][2]string, stored []byte) {
	var lines []string
	rest := msg
	body := []byte(nil)
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := rest
		if i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if i := bytes.IndexByte(line, 0); i >= 0 && body == nil {
			line = line[:i]
		}
		if len(line) == 0 {
			body = rest
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(lines) == 0 {
				body = append(append(line, '\n'), rest...)
				break
			}
			lines[len(lines)-1] += "\n" + string(line)
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !properName(line[:colon]) {
			body = append(append(bytes.Clone(line), '\n'), rest...)
			break
		}
		lines = append(lines, string(line))
	}
	var b bytes.Buffer
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ":")
		fields = append(fields, [2]string{name, value})
		b.WriteString(l + "\n")
	}
	b.WriteString("\n")
	b.Write(body)
	if bytes.Equal(b.Bytes(), msg) {
		return fields, msg
	}
	return fields, b.Bytes()
}

// properName is an RFC 5322 field name: printable ASCII but colon, as Postfix requires.
func properName(name []byte) bool {
	for _, c := range name {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// startMilter runs the milter daemon on a unix socket, trusting the relay clients' network.
func startMilter(t *testing.T, bin, rules, defaultHost string) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "milter.sock")
	cmd := exec.Command(filepath.Join(bin, "block-forged-sender"), "milter", "--listen", "unix:"+socket,
		"--rules", rules, "--default-host", defaultHost, "--trusted-networks", "10.0.0.0/8")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var log bytes.Buffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			return socket
		}
		if time.Now().After(deadline) {
			t.Fatalf("the milter daemon does not listen:\n%s", log.String())
		}
	}
}

// runMilter sends one message to the daemon as Postfix would: client, MAIL FROM, RCPT TO,
// the header fields, end of header.
func runMilter(t *testing.T, socket string, c tcase, rcpt string, fields [][2]string) string {
	t.Helper()
	s, err := lib.NewClient("unix", socket).Session(lib.NewMacroBag())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	step := func(a *lib.Action, err error) (string, bool) {
		if err != nil {
			t.Fatal(err)
		}
		switch a.Type {
		case lib.ActionContinue:
			return "", false
		case lib.ActionAccept:
			return "pass", true
		}
		if a.SMTPCode >= 500 {
			return "reject", true
		}
		return fmt.Sprintf("tempfail %d", a.SMTPCode), true
	}
	if v, done := step(s.Conn("client.example", lib.FamilyInet, 25, clientIP(c))); done {
		return v
	}
	if v, done := step(s.Helo("client.example")); done {
		return v
	}
	if v, done := step(s.Mail(c.sender, "")); done {
		return v
	}
	if v, done := step(s.Rcpt(rcpt, "")); done {
		return v
	}
	if v, done := step(s.DataStart()); done {
		return v
	}
	for _, f := range fields {
		if v, done := step(s.HeaderField(f[0], f[1], nil)); done {
			return v
		}
	}
	if v, done := step(s.HeaderEnd()); done {
		return v
	}
	return "pass"
}
