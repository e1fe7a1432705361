// Package e2e runs block-forged-sender's milter behind a real, private Postfix instance and
// talks SMTP to it with swaks.
//
// The tests run only with BFS_E2E_POSTFIX=1, as root (Postfix's master must start as root),
// with Debian's postfix and swaks installed. With BFS_REQUIRE_TOOLS=1 a missing tool or
// privilege fails the tests instead of skipping them, so CI cannot go green by skipping.
// Each test starts its own instance: its own config, queue and data directories under a
// fresh temporary directory, SMTP on a free loopback port, mail for acme-corp.example
// delivered by virtual(8) into a maildir. No system mail file or queue is touched.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"block-forged-sender/internal/milter"
)

const (
	domain    = "acme-corp.example"
	recipient = "frontoffice@acme-corp.example"
)

// requireTools skips the test unless the end-to-end run is asked for, and fails it when
// BFS_REQUIRE_TOOLS=1 and something it needs is missing.
func requireTools(t *testing.T) {
	t.Helper()
	if os.Getenv("BFS_E2E_POSTFIX") != "1" {
		if os.Getenv("BFS_REQUIRE_TOOLS") == "1" {
			t.Fatal("BFS_REQUIRE_TOOLS=1 but BFS_E2E_POSTFIX is not 1")
		}
		t.Skip("set BFS_E2E_POSTFIX=1 to run the Postfix end-to-end tests")
	}
	var missing []string
	for _, tool := range []string{"postfix", "postconf", "swaks"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if _, err := user.Lookup("postfix"); err != nil {
		missing = append(missing, "user postfix")
	}
	if len(missing) == 0 {
		return
	}
	msg := "postfix end-to-end test needs: " + strings.Join(missing, ", ")
	if os.Getenv("BFS_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// instance is a private Postfix.
type instance struct {
	dir  string // everything lives below dir
	conf string // config_directory
	port int    // SMTP on 127.0.0.1:port
}

// options configure an instance.
type options struct {
	milter        string // smtpd_milters value; "" for none
	defaultAction string // milter_default_action; "" keeps Postfix's default (tempfail)
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// mailUID is the owner of the delivered mail: nobody (virtual(8) refuses uids under 100).
func mailUID(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

const masterCF = `# private instance: every service unchrooted, SMTP on one loopback port only
127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n - n 60    1 pickup
cleanup   unix  n - n -     0 cleanup
qmgr      unix  n - n 300   1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -     - trivial-rewrite
bounce    unix  - - n -     0 bounce
defer     unix  - - n -     0 bounce
trace     unix  - - n -     0 bounce
verify    unix  - - n -     1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -     - proxymap
smtp      unix  - - n -     - smtp
relay     unix  - - n -     - smtp
showq     unix  n - n -     - showq
error     unix  - - n -     - error
retry     unix  - - n -     - error
discard   unix  - - n -     - discard
local     unix  - n n -     - local
virtual   unix  - n n -     - virtual
lmtp      unix  - - n -     - lmtp
anvil     unix  - - n -     1 anvil
scache    unix  - - n -     1 scache
postlog   unix-dgram n - n - 1 postlogd
`

// mainCF is the whole main.cf; %[1]s is the instance directory.
const mainCF = `compatibility_level = 3.6
config_directory = %[1]s/conf
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.acme-corp.example
mydomain = acme-corp.example
myorigin = acme-corp.example
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
alias_maps =
alias_database =
virtual_mailbox_domains = acme-corp.example
virtual_mailbox_base = %[1]s/mail
virtual_mailbox_maps = texthash:%[1]s/conf/vmailbox
virtual_uid_maps = static:%[2]d
virtual_gid_maps = static:%[3]d
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
smtputf8_enable = no
biff = no
smtpd_milters = %[4]s
milter_default_action = %[5]s
milter_connect_timeout = 5s
milter_command_timeout = 10s
`

// startPostfix starts a private instance; the test's cleanup stops it and removes it.
func startPostfix(t *testing.T, opt options) *instance {
	t.Helper()
	dir, err := os.MkdirTemp("", "bfs-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	// Postfix's daemons run as postfix and nobody and open paths below dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in := &instance{dir: dir, conf: filepath.Join(dir, "conf"), port: freePort(t)}
	uid, gid := mailUID(t)
	pf, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	pfUID, _ := strconv.Atoi(pf.Uid)
	for _, d := range []string{"conf", "queue", "data", "mail"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Chown(filepath.Join(dir, "data"), pfUID, -1))
	must(t, os.Chown(filepath.Join(dir, "mail"), uid, gid))
	if opt.defaultAction == "" {
		opt.defaultAction = "tempfail"
	}
	must(t, os.WriteFile(filepath.Join(in.conf, "main.cf"), fmt.Appendf(nil, mainCF, dir, uid, gid, opt.milter, opt.defaultAction), 0o644))
	must(t, os.WriteFile(filepath.Join(in.conf, "master.cf"), fmt.Appendf(nil, masterCF, in.port), 0o644))
	must(t, os.WriteFile(filepath.Join(in.conf, "vmailbox"), []byte(recipient+" frontoffice/\n"), 0o644))

	t.Cleanup(func() {
		in.stop(t)
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "maillog")); err == nil {
				t.Logf("postfix maillog:\n%s", b)
			}
		}
		os.RemoveAll(dir)
	})
	if out, err := in.postfix("start"); err != nil {
		t.Fatalf("postfix start: %v\n%s", err, out)
	}
	// Wait for smtpd's port: master opens it before it forks anything.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", in.addr())
		if err == nil {
			c.Close()
			return in
		}
		if time.Now().After(deadline) {
			t.Fatalf("postfix does not listen on %s: %v", in.addr(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (in *instance) addr() string { return "127.0.0.1:" + strconv.Itoa(in.port) }

// postfix runs the postfix command on this instance. Its output goes through a file:
// master daemonizes and keeps inherited descriptors, so a pipe would never close.
func (in *instance) postfix(args ...string) ([]byte, error) {
	f, err := os.CreateTemp(in.dir, "postfix-out-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "postfix", append([]string{"-c", in.conf}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, _ := os.ReadFile(f.Name())
	return out, err
}

// stop stops master and waits until it is gone.
func (in *instance) stop(t *testing.T) {
	pidFile := filepath.Join(in.dir, "queue", "pid", "master.pid")
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if out, err := in.postfix("stop"); err != nil {
		t.Logf("postfix stop: %v\n%s", err, out)
	}
	if pid <= 0 {
		return
	}
	// postfix stop returns once master's pid file lock is released; the daemons may take
	// a moment longer. Processes other than master were started by master and exit with it.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid), "status")); err != nil {
			return
		}
		if st, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); bytes.Contains(st, []byte(") Z ")) {
			return // a zombie: exited, waiting for a reaper that is not ours
		}
	}
	t.Logf("postfix master %d still running after stop", pid)
}

// swaks sends one message and returns its transcript and exit status. msg is the whole
// message (header and body, LF or CRLF line ends); from is the envelope sender.
func (in *instance) swaks(t *testing.T, from string, msg []byte) (string, int) {
	t.Helper()
	// swaks ends the data with CRLF "." CRLF after what it read: drop the message's own
	// final line end so the delivered body is the message's, byte for byte.
	msg = bytes.TrimSuffix(msg, []byte("\n"))
	msg = bytes.TrimSuffix(msg, []byte("\r"))
	f := filepath.Join(t.TempDir(), "msg.eml")
	must(t, os.WriteFile(f, msg, 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "swaks", "--server", in.addr(), "--helo", "client.lure-mailer.example",
		"--from", from, "--to", recipient, "--data", "@"+f, "--timeout", "30")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("swaks: %v", err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// delivered waits for the maildir to hold n messages and returns them in delivery order.
func (in *instance) delivered(t *testing.T, n int) [][]byte {
	t.Helper()
	dir := filepath.Join(in.dir, "mail", "frontoffice", "new")
	deadline := time.Now().Add(20 * time.Second)
	for {
		ents, _ := os.ReadDir(dir)
		if len(ents) >= n || time.Now().After(deadline) {
			var msgs [][]byte
			for _, e := range ents {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				must(t, err)
				msgs = append(msgs, b)
			}
			if len(msgs) != n {
				t.Fatalf("maildir holds %d messages, want %d", len(msgs), n)
			}
			return msgs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// body is the part of a delivered message after the header.
func body(msg []byte) []byte {
	if _, b, ok := bytes.Cut(msg, []byte("\n\n")); ok {
		return b
	}
	return nil
}

var legit = []byte("From: Partner <sales@northwind-traders.example>\r\n" +
	"To: " + recipient + "\r\n" +
	"Subject: quarterly figures\r\n" +
	"\r\n" +
	"Hello,\r\n" +
	"From: ceo@acme-corp.example is in the body, which is never scanned.\r\n" +
	".leading dot\r\n")

var forged = []byte("From: CEO <ceo@acme-corp.example>\r\n" +
	"To: " + recipient + "\r\n" +
	"Subject: urgent wire transfer\r\n" +
	"\r\n" +
	"Pay now.\r\n")

// wantBody is legit's body as delivered: LF line ends, the leading dot unstuffed.
const wantBody = "Hello,\nFrom: ceo@acme-corp.example is in the body, which is never scanned.\n.leading dot\n"

// TestDelivery proves the harness without a milter: swaks to the private Postfix, and the
// message lands in the maildir with its body intact.
func TestDelivery(t *testing.T) {
	requireTools(t)
	pf := startPostfix(t, options{})
	out, code := pf.swaks(t, "sales@northwind-traders.example", legit)
	if code != 0 || !strings.Contains(out, "<-  250 2.0.0 Ok: queued as ") {
		t.Fatalf("swaks exit %d, transcript:\n%s", code, out)
	}
	msgs := pf.delivered(t, 1)
	if got := string(body(msgs[0])); got != wantBody {
		t.Errorf("delivered body = %q, want %q", got, wantBody)
	}
}

// testDecider stands in for the policy engine until the real one is wired in: it rejects
// our domain as the envelope sender or in a From field.
func testDecider(in *milter.Input) (milter.Result, error) {
	if strings.HasSuffix(strings.ToLower(in.Sender), "@"+domain) {
		return milter.Result{Reject: true, Reason: "forged sender: envelope uses our domain"}, nil
	}
	for _, line := range strings.Split(string(in.Header), "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "From") && strings.Contains(strings.ToLower(value), "@"+domain) {
			return milter.Result{Reject: true, Reason: "forged sender: From uses our domain"}, nil
		}
	}
	return milter.Result{}, nil
}

// startMilter serves the milter adapter with testDecider on a loopback port.
func startMilter(t *testing.T, log func(milter.Entry)) (spec string, srv *milter.Server) {
	t.Helper()
	ln, err := milter.Listen("inet:0@127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv = milter.NewServer(milter.Config{Decider: milter.DeciderFunc(testDecider), Log: log})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("milter Serve: %v", err)
		}
	})
	return "inet:" + ln.Addr().String(), srv
}

// TestMilter: with the milter, forged mail is refused in the SMTP dialogue with our reason,
// legitimate mail is delivered intact, and the log entry carries Postfix's queue id.
func TestMilter(t *testing.T) {
	requireTools(t)
	entries := make(chan milter.Entry, 10)
	spec, _ := startMilter(t, func(e milter.Entry) { entries <- e })
	pf := startPostfix(t, options{milter: spec})

	cases := []struct {
		name    string
		from    string
		msg     []byte
		reply   string // a line the transcript must hold
		code    int    // swaks exit status: 0 delivered, 23 refused at MAIL FROM, 26 after DATA
		verdict milter.Verdict
		stage   milter.Stage
	}{
		{"legitimate", "sales@northwind-traders.example", legit, "<-  250 2.0.0 Ok: queued as ", 0, milter.VerdictPass, milter.StageHeader},
		{"forged From", "bounce@lure-mailer.example", forged, "<** 550 5.7.1 forged sender: From uses our domain", 26, milter.VerdictReject, milter.StageHeader},
		{"forged envelope", "noc@acme-corp.example", legit, "<** 550 5.7.1 forged sender: envelope uses our domain", 23, milter.VerdictReject, milter.StageMail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := pf.swaks(t, tc.from, tc.msg)
			if !strings.Contains(out, tc.reply) || code != tc.code {
				t.Errorf("swaks exit %d, want %d and %q; transcript:\n%s", code, tc.code, tc.reply, out)
			}
			select {
			case e := <-entries:
				if e.Verdict != tc.verdict || e.Stage != tc.stage {
					t.Errorf("log entry verdict %s at %s, want %s at %s", e.Verdict, e.Stage, tc.verdict, tc.stage)
				}
				if tc.stage == milter.StageHeader && e.QueueID == "" {
					t.Errorf("log entry without Postfix queue id: %+v", e)
				}
				if e.QueueID != "" && tc.verdict == milter.VerdictPass && !strings.Contains(out, "queued as "+e.QueueID) {
					t.Errorf("log queue id %q is not the one Postfix gave; transcript:\n%s", e.QueueID, out)
				}
			case <-time.After(10 * time.Second):
				t.Error("no log entry from the milter")
			}
		})
	}
	msgs := pf.delivered(t, 1)
	if got := string(body(msgs[0])); got != wantBody {
		t.Errorf("delivered body = %q, want %q", got, wantBody)
	}
}

// TestMilterDown documents Postfix's milter_default_action with the milter not running
// (nothing listens on its port): tempfail refuses with 451 4.7.1, accept delivers.
func TestMilterDown(t *testing.T) {
	requireTools(t)
	cases := []struct {
		action string
		reply  string
		code   int
		n      int // messages delivered
	}{
		{"tempfail", "<** 451 4.7.1 Service unavailable - try again later", 23, 0},
		{"accept", "<-  250 2.0.0 Ok: queued as ", 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.action, func(t *testing.T) {
			pf := startPostfix(t, options{milter: fmt.Sprintf("inet:127.0.0.1:%d", freePort(t)), defaultAction: tc.action})
			out, code := pf.swaks(t, "sales@northwind-traders.example", legit)
			if !strings.Contains(out, tc.reply) || code != tc.code {
				t.Errorf("swaks exit %d, want %d and %q; transcript:\n%s", code, tc.code, tc.reply, out)
			}
			t.Logf("transcript:\n%s", out)
			if tc.n > 0 {
				pf.delivered(t, tc.n)
			}
		})
	}
}
