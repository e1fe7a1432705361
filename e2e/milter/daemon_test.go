package e2e

import (
	"bufio"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testRules = "@acme-corp.example\tforged sender: acme-corp.example used from outside\n"

var legit = []byte("From: Partner <sales@northwind-traders.example>\r\n" +
	"To: " + recipient + "\r\n" +
	"Subject: quarterly figures\r\n" +
	"\r\n" +
	"Hello,\r\n" +
	"From: ceo@acme-corp.example is in the body, which is never scanned.\r\n" +
	".leading dot\r\n")

// legitBody is legit's body as delivered: LF line ends, the leading dot kept.
const legitBody = "Hello,\nFrom: ceo@acme-corp.example is in the body, which is never scanned.\n.leading dot\n"

var forged = []byte("From: CEO <ceo@acme-corp.example>\r\n" +
	"To: " + recipient + "\r\n" +
	"Subject: urgent wire transfer\r\n" +
	"\r\n" +
	"Pay now.\r\n")

// TestDelivery proves the harness without a milter: swaks to the private Postfix, and the
// message lands in the maildir with its body intact.
func TestDelivery(t *testing.T) {
	requireTools(t)
	pf := startPostfix(t, options{})
	out, code := pf.swaks(t, send{from: "sales@northwind-traders.example", msg: legit})
	id := queuedID(out)
	if code != 0 || id == "" {
		t.Fatalf("swaks exit %d, transcript:\n%s", code, out)
	}
	if got := string(body(pf.deliveredByID(t, id))); got != legitBody {
		t.Errorf("delivered body = %q, want %q", got, legitBody)
	}
}

// TestQueueID: the daemon's log line for a message carries Postfix's queue id, the one
// Postfix logs for the same message (delivered, or refused at the end of the header, which
// Postfix logs as "milter-reject: END-OF-MESSAGE": it answers after the final dot).
func TestQueueID(t *testing.T) {
	requireTools(t)
	d := startDaemon(t, testRules)
	pf := startPostfix(t, options{milter: d.spec})

	out, code := pf.swaks(t, send{from: "sales@northwind-traders.example", msg: legit})
	id := queuedID(out)
	if code != 0 || id == "" {
		t.Fatalf("swaks exit %d, transcript:\n%s", code, out)
	}
	if got := string(body(pf.deliveredByID(t, id))); got != legitBody {
		t.Errorf("delivered body = %q, want %q", got, legitBody)
	}
	line := d.logLine(t, id)
	want := "block-forged-sender: queue=" + id + " verdict=pass stage=header sender=sales@northwind-traders.example rcpt=" + recipient + " client=127.0.0.1 host=localhost duration="
	if !hasFields(line, want) {
		t.Errorf("log line %q, want it to start %q", line, want)
	}
	if log := waitFor(t, pf, id+": to=<"+recipient+">"); !strings.Contains(log, "status=sent") {
		t.Errorf("postfix's log for %s: %q, want status=sent", id, log)
	}

	out, code = pf.swaks(t, send{from: "bounce@lure-mailer.example", msg: forged})
	if reply := refusal(out); code != 26 || reply != "550 5.7.1 forged sender: acme-corp.example used from outside" {
		t.Fatalf("swaks exit %d, refusal %q; transcript:\n%s", code, reply, out)
	}
	log := waitFor(t, pf, ": milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: 5.7.1 forged sender: acme-corp.example used from outside; from=<bounce@lure-mailer.example>")
	rid, _, _ := strings.Cut(log[strings.Index(log, "]: ")+3:], ":")
	line = d.logLine(t, rid)
	want = "block-forged-sender: queue=" + rid + ` verdict=reject stage=header reason="forged sender: acme-corp.example used from outside" rule=` +
		d.rules + ":1 matched=From:ceo@acme-corp.example sender=bounce@lure-mailer.example rcpt=" + recipient + " client=127.0.0.1 host=localhost duration="
	if !hasFields(line, want) {
		t.Errorf("log line %q, want it to start %q", line, want)
	}
}

// waitFor returns the first line of Postfix's log holding s, waiting up to 10 s for it.
func waitFor(t testing.TB, pf *instance, s string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, l := range strings.Split(pf.maillog(t), "\n") {
			if strings.Contains(l, s) {
				return l
			}
		}
	}
	t.Fatalf("postfix log has no line with %q", s)
	return ""
}

// TestMilterDown documents Postfix's milter_default_action with the daemon stopped (its
// socket gone): Postfix's default, tempfail, on which the README relies without setting it,
// refuses every message at MAIL FROM with 451 4.7.1; accept delivers unchecked, forged mail
// included.
func TestMilterDown(t *testing.T) {
	requireTools(t)
	cases := []struct {
		name, action string // action "": main.cf does not set milter_default_action
		reply        string
		code         int
	}{
		{"default", "", "451 4.7.1 Service unavailable - try again later", 23},
		{"accept", "accept", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := startDaemon(t, testRules)
			if err := d.stop(t); err != nil {
				t.Fatalf("daemon exit after SIGTERM: %v", err)
			}
			if _, err := os.Stat(d.socket); !os.IsNotExist(err) {
				t.Fatalf("socket left behind after SIGTERM: %v", err)
			}
			pf := startPostfix(t, options{milter: d.spec, defaultAction: tc.action})
			out, code := pf.swaks(t, send{from: "bounce@lure-mailer.example", msg: forged})
			if got := refusal(out); got != tc.reply || code != tc.code {
				t.Fatalf("swaks exit %d, refusal %q, want %d and %q; transcript:\n%s", code, got, tc.code, tc.reply, out)
			}
			if tc.code == 0 {
				if got := string(body(pf.deliveredByID(t, queuedID(out)))); got != "Pay now.\n" {
					t.Errorf("delivered body %q", got)
				}
			}
			waitFor(t, pf, "warning: connect to Milter service "+d.spec+": No such file or directory")
		})
	}
}

// writeRules replaces the rules text the way editors and config tools do: a new file
// renamed over the old one, so the daemon never reads half a file.
func writeRules(t *testing.T, d *daemon, text string) {
	t.Helper()
	tmp := d.rules + ".new"
	must(t, os.WriteFile(tmp, []byte(text), 0o644))
	must(t, os.Rename(tmp, d.rules))
}

// TestReload: an edited rules text is in use for the next message without a restart (the
// daemon looks at most once a second), a SIGHUP reloads at once, and a rules text with a
// syntax error leaves the last good list in use.
func TestReload(t *testing.T) {
	requireTools(t)
	d := startDaemon(t, testRules)
	pf := startPostfix(t, options{milter: d.spec})
	partner := send{from: "sales@northwind-traders.example", msg: legit}
	expect := func(s send, reply string, code int) {
		t.Helper()
		out, c := pf.swaks(t, s)
		if got := refusal(out); got != reply || c != code {
			t.Fatalf("swaks exit %d, refusal %q, want %d and %q; transcript:\n%s", c, got, code, reply, out)
		}
	}
	expect(partner, "", 0)

	// An edit: the partner's domain is banned now. The daemon compares the files at most
	// once a second.
	writeRules(t, d, testRules+"@northwind-traders.example\tpartner banned now\n")
	time.Sleep(1100 * time.Millisecond)
	expect(partner, "550 5.7.1 partner banned now", 23)
	waitFor(t, pf, "NOQUEUE: milter-reject: MAIL from localhost[127.0.0.1]: 550 5.7.1 partner banned now; from=<sales@northwind-traders.example>")

	// A broken edit: the daemon keeps the last good list.
	writeRules(t, d, testRules+"@northwind-traders.example\tpartner banned now\n!\n")
	time.Sleep(1100 * time.Millisecond)
	expect(partner, "550 5.7.1 partner banned now", 23)
	time.Sleep(1100 * time.Millisecond)
	expect(partner, "550 5.7.1 partner banned now", 23)
	// The failure is logged, once, naming the last good CDB in use and the mistake: the
	// same broken files are not parsed again every second.
	if n := strings.Count(d.logText(t), `(last good: the text does not compile)" warning="the rules text does not compile (`+d.rules+`:3: exception without an entry)`); n != 1 {
		t.Errorf("the broken edit was logged %d times, want once:\n%s", n, d.logText(t))
	}

	// SIGHUP: the new reason is in use as soon as the daemon logs the reload, with no wait
	// for the once-a-second check.
	writeRules(t, d, testRules+"@northwind-traders.example\tpartner banned, reloaded on SIGHUP\n")
	before := strings.Count(d.logText(t), "event=reload rules=")
	must(t, d.cmd.Process.Signal(syscall.SIGHUP))
	for deadline := time.Now().Add(10 * time.Second); strings.Count(d.logText(t), "event=reload rules=") == before; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged after SIGHUP:\n%s", d.logText(t))
		}
	}
	expect(partner, "550 5.7.1 partner banned, reloaded on SIGHUP", 23)
	if _, err := os.Stat(d.rules + ".cdb"); err != nil {
		t.Errorf("the daemon did not compile the rules: %v", err)
	}
}

// smtpClient is a minimal SMTP client for a transaction held open half way.
type smtpClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialSMTP(t testing.TB, addr string) *smtpClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	s := &smtpClient{t: t, conn: c, r: bufio.NewReader(c)}
	s.expect("220")
	return s
}

// expect reads one (multi-line) reply and returns its last line; it must start with code.
func (s *smtpClient) expect(code string) string {
	s.t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("smtp: %v", err)
		}
		if !strings.HasPrefix(line, code) {
			s.t.Fatalf("smtp reply %q, want %s", line, code)
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

func (s *smtpClient) cmd(line, code string) string {
	s.t.Helper()
	s.write(line + "\r\n")
	return s.expect(code)
}

func (s *smtpClient) write(data string) {
	s.t.Helper()
	if _, err := s.conn.Write([]byte(data)); err != nil {
		s.t.Fatalf("smtp: %v", err)
	}
}

// TestShutdownInFlight: SIGTERM while a message is between MAIL FROM and the end of its
// header. The daemon stops accepting connections at once (a new SMTP session meets
// milter_default_action: 451), finishes the message in flight with its real verdict, then
// exits 0.
func TestShutdownInFlight(t *testing.T) {
	requireTools(t)
	d := startDaemon(t, testRules)
	pf := startPostfix(t, options{milter: d.spec})
	s := dialSMTP(t, pf.addr())
	s.cmd("EHLO client.lure-mailer.example", "250")
	s.cmd("MAIL FROM:<bounce@lure-mailer.example>", "250")
	s.cmd("RCPT TO:<"+recipient+">", "250")
	s.cmd("DATA", "354")
	s.write("Subject: in flight\r\nFrom: CEO <ceo@acme-corp.example>\r\n")

	must(t, d.cmd.Process.Signal(syscall.SIGTERM))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(d.socket); os.IsNotExist(err) {
			break // the listener is closed
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon still listens 10 s after SIGTERM")
		}
	}
	select {
	case err := <-d.done:
		t.Fatalf("the daemon exited with a message in flight: %v\n%s", err, d.logText(t))
	default:
	}
	out, code := pf.swaks(t, send{from: "sales@northwind-traders.example", msg: legit})
	if got := refusal(out); code != 23 || got != "451 4.7.1 Service unavailable - try again later" {
		t.Errorf("new session during shutdown: swaks exit %d, refusal %q; transcript:\n%s", code, got, out)
	}

	s.write("To: " + recipient + "\r\n\r\nPay now.\r\n.\r\n")
	if got := s.expect("550"); got != "550 5.7.1 forged sender: acme-corp.example used from outside" {
		t.Errorf("in-flight message: %q", got)
	}
	s.cmd("QUIT", "221")
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the daemon did not exit after its last message:\n%s", d.logText(t))
	}
	log := d.logText(t)
	if !strings.Contains(log, "event=shutdown signal=terminated\n") ||
		!strings.Contains(log, ` verdict=reject stage=header reason="forged sender: acme-corp.example used from outside"`) {
		t.Errorf("daemon log:\n%s", log)
	}
	if i, j := strings.Index(log, "event=shutdown"), strings.Index(log, "verdict=reject"); i > j {
		t.Errorf("the verdict was logged before the shutdown began:\n%s", log)
	}

}
