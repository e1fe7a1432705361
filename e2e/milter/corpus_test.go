package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// corpusDir is the shared corpus, relative to this package's directory (the repository's
// ../shared/corpus); BFS_CORPUS overrides it.
func corpusDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BFS_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "corpus")
	}
	if _, err := os.Stat(filepath.Join(dir, "cases.tsv")); err != nil {
		cannotRun(t, fmt.Sprintf("corpus not found: %v", err))
	}
	return dir
}

// corpusCase is one line of cases.tsv.
type corpusCase struct {
	name, sender string
	relay        bool
	forged       bool // expected exit 31
}

func readCases(t *testing.T, dir string) []corpusCase {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "cases.tsv"))
	must(t, err)
	defer f.Close()
	var cases []corpusCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		col := strings.Split(line, "\t")
		if len(col) < 4 {
			t.Fatalf("cases.tsv: bad line %q", line)
		}
		cases = append(cases, corpusCase{name: col[0], sender: col[1], relay: col[2] == "yes", forged: col[3] == "31"})
	}
	must(t, sc.Err())
	return cases
}

// The reasons of ../shared/corpus/badsenders, and the daemon's text for a rule without one.
const (
	reasonOurs      = "forged sender: acme-corp.example used from outside"
	reasonSub       = "forged sender: a subdomain of acme-corp.example used from outside"
	reasonPhish     = "phishing campaign, September 2024"
	reasonHomograph = "homograph of acme-corp.example"
	reasonNone      = "sender address rejected"
)

// corpusReasons is the rule each forged case meets first (the same as the qmail filter's
// log line names for it); cases not listed meet @acme-corp.example.
var corpusReasons = map[string]string{
	"forged-env-subdomain-mixed-case": reasonSub,
	"forged-env-subdomain-root-dot":   reasonSub,
	"forged-env-phisher":              reasonPhish,
	"forged-env-junk-apex":            reasonNone,
	"forged-from-phisher-mixed-case":  reasonPhish,
	"forged-from-junk-deep-subdomain": reasonNone,
	"forged-from-alerts-subdomain":    reasonSub,
	"forged-name-folded-before-colon": reasonSub,
	"forged-fold-after-dot":           reasonSub,
	"forged-dn-parens-in-quotes":      reasonSub,
	"forged-group-named-member-crlf":  reasonSub,
	"forged-angle-double-open":        reasonSub,
	"forged-idn-utf8-from":            reasonHomograph,
	"forged-idn-ace-upper":            reasonHomograph,
	"forged-idn-q-display":            reasonHomograph,
	"forged-idn-env-ace":              reasonHomograph,
	"forged-nul-before-angle":         reasonSub,
	"forged-bnd-bare-cr-in-received":  reasonSub,
}

// envelopeForged are the forged cases decided by their envelope sender: refused at MAIL FROM.
var envelopeForged = map[string]bool{
	"forged-env-org-crlf": true, "forged-env-subdomain-mixed-case": true, "forged-env-subdomain-root-dot": true,
	"forged-env-phisher": true, "forged-env-junk-apex": true, "forged-idn-env-ace": true,
}

// outcome is what the SMTP client sees for one message.
type outcome struct {
	reply string // the refusal line of the transcript ("<** ..."), or "" when queued
	code  int    // swaks's exit status: 0 queued, 23 refused at MAIL FROM, 26 after DATA
}

// loadMessage reads a case's message, generating the big ones.
func loadMessage(t *testing.T, dir, bigDir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name+".eml"))
	if err == nil {
		return b
	}
	p := filepath.Join(bigDir, name+".eml")
	if _, err := os.Stat(p); err != nil {
		out, err := exec.Command("python3", filepath.Join(dir, "make-corpus.py"), "--big", bigDir, name).CombinedOutput()
		if err != nil {
			t.Fatalf("make-corpus.py --big %s: %v\n%s", name, err, out)
		}
	}
	b, err = os.ReadFile(p)
	must(t, err)
	return b
}

// refusal returns the last "<** " line of a transcript.
func refusal(transcript string) string {
	var last string
	for _, l := range strings.Split(transcript, "\n") {
		if strings.HasPrefix(l, "<** ") {
			last = strings.TrimPrefix(l, "<** ")
		}
	}
	return last
}

// wantBody is the body Postfix delivers (and Sendmail queues) for a message sent with smtpData: what follows
// the first empty line (or, with start, from the first line beginning with start on), with
// LF line ends (CRLF and a missing final line end normalized) and every bare CR a space:
// Postfix turns bare CRs into spaces (legit-body-binary and legit-body-utf16 hold some).
func wantBody(msg []byte, start string) []byte {
	wire := smtpData(msg)
	wire = wire[:len(wire)-1] // the dot
	var out []byte
	inBody := false
	for len(wire) > 0 {
		i := bytes.Index(wire, []byte("\r\n"))
		line := wire[:i]
		wire = wire[i+2:]
		if !inBody && start != "" && bytes.HasPrefix(append(bytes.Clone(line), '\n'), []byte(start)) {
			inBody = true
		}
		if inBody {
			line = bytes.TrimPrefix(line, []byte("."))
			out = append(out, line...)
			out = append(out, '\n')
		} else if len(line) == 0 && start == "" {
			inBody = true
		}
	}
	return bytes.ReplaceAll(out, []byte("\r"), []byte(" "))
}

// mtaChange is what an MTA itself does to one corpus case, before or instead of the milter.
type mtaChange struct {
	out       outcome
	bodyStart string // the body starts at this line (the MTA ended the header before it); "" normal
	note      string
}

// corpusMTA is what runCorpus needs of one MTA.
type corpusMTA struct {
	send    func(t *testing.T, s send) (transcript string, code int)
	changed map[string]mtaChange
	// mailFromRefusal is the reply line of a refusal at MAIL FROM.
	mailFromRefusal func(sender, reason string) string
	// stored finds the accepted message: its queue id, its body as stored (LF line ends)
	// and the whole message as a mail reader gets it.
	stored func(t *testing.T, transcript string) (id string, body, msg []byte)
	// idAtMailFrom: the MTA has its queue id at MAIL FROM (Sendmail), so the daemon logs
	// it for a session trusted there; Postfix has none yet.
	idAtMailFrom bool
}

// runCorpus sends every case of ../shared/corpus through an MTA and the daemon d, which
// holds the corpus rules and trusts 127.0.0.2: forged cases are refused with 550 5.7.1 and
// the rule's reason (at MAIL FROM when the envelope decides, else at the end of DATA),
// legitimate ones are accepted with their bodies intact, unless mta.changed says the MTA
// does otherwise itself. "relayclient yes" cases are sent from 127.0.0.2 (the milter's
// counterpart of qmail's RELAYCLIENT); all others from 127.0.0.1. Every accepted message,
// as stored, is checked with the same rules: no reader sees a blocked sender address.
func runCorpus(t *testing.T, dir string, d *daemon, mta corpusMTA) {
	bigDir := t.TempDir()
	rejected := 0 // cases refused with our 550
	for _, c := range readCases(t, dir) {
		t.Run(c.name, func(t *testing.T) {
			msg := loadMessage(t, dir, bigDir, c.name)
			s := send{from: c.sender, msg: msg}
			if c.relay {
				s.client = "127.0.0.2"
			}
			transcript, code := mta.send(t, s)
			got := outcome{refusal(transcript), code}
			changed, special := mta.changed[c.name]
			want := changed.out
			if !special {
				switch {
				case !c.forged:
				case envelopeForged[c.name]:
					want = outcome{mta.mailFromRefusal(c.sender, reason(c.name)), 23}
				default:
					want = outcome{"550 5.7.1 " + reason(c.name), 26}
				}
			}
			if got != want {
				t.Fatalf("got %+v, want %+v (%s); transcript:\n%s", got, want, changed.note, tail([]byte(transcript), 3000))
			}
			if strings.HasPrefix(got.reply, "550 5.7.1 ") {
				rejected++
			}
			if got.code != 0 {
				return
			}
			id, gb, stored := mta.stored(t, transcript)
			if wb := wantBody(msg, changed.bodyStart); !bytes.Equal(gb, wb) {
				t.Errorf("stored body differs: %d bytes, want %d\n got %q\nwant %q", len(gb), len(wb), head(gb), head(wb))
			}
			if c.relay {
				// Trusted at MAIL FROM, with the queue id if the MTA has one there.
				q := `""`
				if mta.idAtMailFrom {
					q = id
				}
				want := "block-forged-sender: queue=" + q + " verdict=pass stage=mail trusted=network sender=" + c.sender + " client=127.0.0.2 duration="
				if !logHas(d.logText(t), want) {
					t.Errorf("daemon log has no line %q", want)
				}
				return
			}
			line := d.logLine(t, id)
			if !hasFields(line, "block-forged-sender: queue="+id+" verdict=pass stage=header sender=") {
				t.Errorf("daemon log line for %s: %q, want a pass at end of header", id, line)
			}
			checkDelivered(t, d, stored)
		})
	}
	// The daemon logged one reject line for each of our refusals, and no other.
	if n := strings.Count(d.logText(t), " verdict=reject "); n != rejected || rejected == 0 {
		t.Errorf("daemon logged %d rejections, the SMTP client saw %d", n, rejected)
	}
}

// TestCorpus runs the shared corpus through Postfix (see runCorpus and postfixChanged).
func TestCorpus(t *testing.T) {
	requireTools(t)
	dir := corpusDir(t)
	rules, err := os.ReadFile(filepath.Join(dir, "badsenders"))
	must(t, err)
	d := startDaemon(t, string(rules), "--trusted-networks", "127.0.0.2/32")
	pf := startPostfix(t, options{milter: d.spec, extra: corpusMainCF})
	runCorpus(t, dir, d, corpusMTA{
		send:    pf.swaks,
		changed: postfixChanged,
		mailFromRefusal: func(_, reason string) string {
			return "550 5.7.1 " + reason
		},
		stored: func(t *testing.T, transcript string) (string, []byte, []byte) {
			id := queuedID(transcript)
			delivered := pf.deliveredByID(t, id)
			return id, body(delivered), delivered
		},
	})
}

func head(b []byte) []byte {
	if len(b) > 300 {
		return b[:300]
	}
	return b
}

func reason(name string) string {
	if r, ok := corpusReasons[name]; ok {
		return r
	}
	return reasonOurs
}

// corpusMainCF raises message_size_limit (default 10240000; it must stay under
// virtual_mailbox_limit, 51200000) so the 18 MB bodies of the
// size cases reach the mailbox: the milter never sees a body, and the test shows it.
const corpusMainCF = `message_size_limit = 50000000`

// postfixChanged lists the cases where Postfix itself changes the message before the milter
// sees it, or refuses it itself (Postfix 3.7 as in Debian 12, default settings besides
// message_size_limit). A case whose forged address Postfix drops or moves into the body is
// delivered: the test then checks that the delivered message, read by the filter with the
// same rules, shows no blocked sender address (no mail reader would show one either).
var postfixChanged = map[string]mtaChange{
	"forged-multi-indented-first-line": {outcome{}, "\t  From: \"Treasury\"", "an indented first line is no header field to Postfix: it ends the header there (its own Received, Message-Id, Date and From: <envelope sender> go above an empty line it inserts), so the whole message, our From included, is body"},
	"forged-name-folded-before-colon":  {outcome{}, "From\n", "\"From\" without a colon is no header field: Postfix ends the header and inserts an empty line before it, so the folded From and its address are body"},
	"forged-bnd-gt-from-line":          {outcome{}, ">From ", "the >From line is no header field: Postfix ends the header there, inserting an empty line, so our From after it is body"},
	"forged-nul-in-domain":             {outcome{}, "", "Postfix cuts a header line at a NUL byte: the milter sees, and the mailbox gets, \"From: noc@acme\""},
	"forged-nul-before-angle":          {outcome{}, "", "Postfix cuts a header line at a NUL byte: the milter sees, and the mailbox gets, \"From: mallory@lure-mailer.example\""},
	"forged-bnd-bare-cr-in-received":   {outcome{}, "", "Postfix turns a bare CR into a space: the From after it stays part of the Received value, for the milter and in the mailbox"},
	"forged-size-big-header":           {outcome{"554 5.4.0 Error: too many hops", 26}, "", "16000 Received fields: Postfix refuses the message itself (hopcount_limit 50) after DATA"},
	"legit-size-big-header":            {outcome{"554 5.4.0 Error: too many hops", 26}, "", "16000 Received fields: Postfix refuses the message itself (hopcount_limit 50) after DATA"},
	"legit-bounce-double":              {outcome{"501 5.1.7 Bad sender address syntax", 23}, "", "Postfix refuses the envelope sender #@[] (an empty address literal) at MAIL FROM"},
}

// checkDelivered runs the filter's check command on a delivered message with the daemon's
// rules: no reader of what Postfix stored sees a blocked sender address.
func checkDelivered(t *testing.T, d *daemon, msg []byte) {
	t.Helper()
	rules := filepath.Join(t.TempDir(), "badsenders")
	text, err := os.ReadFile(d.rules)
	must(t, err)
	must(t, os.WriteFile(rules, text, 0o644))
	cmd := exec.Command(program(t), "check", "--rules", rules, "--sender", "postmaster@northwind-traders.example", "--rcpt", recipient, "-")
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("check of the delivered message: %v\n%s", err, out)
	}
}
