package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"block-forged-sender/internal/testenv"
)

// Sendmail conflicts with Postfix as a Debian package, so CI does not install it: .ci/run
// unpacks Debian's sendmail-bin and sendmail-cf with dpkg -x into a directory and names it
// in BFS_SENDMAIL_ROOT. Without that variable the tests use an installed Sendmail (Debian's
// paths). They also need m4 (to build sendmail.cf from the .mc the README shows) and
// unshare(1): Sendmail refuses to start, sleeping 60 s per try, when the machine's host name
// has no dot and does not resolve to one, so each instance runs in its own UTS namespace
// named mx.acme-corp.example.

// sendmailTools returns Sendmail's binary and its cf tree, ending the test with cannotRun
// when they or m4 or unshare are missing.
func sendmailTools(t testing.TB) (bin, cf string) {
	t.Helper()
	requireTools(t, "m4", "unshare")
	root := os.Getenv("BFS_SENDMAIL_ROOT")
	bin = filepath.Join(root, "/usr/libexec/sendmail/sendmail")
	cf = filepath.Join(root, "/usr/share/sendmail/cf")
	var missing []string
	for _, p := range []string{bin, filepath.Join(cf, "m4", "cf.m4")} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		cannotRun(t, "sendmail end-to-end test needs Debian's sendmail-bin and sendmail-cf (installed, or unpacked into BFS_SENDMAIL_ROOT); missing: "+strings.Join(missing, ", "))
	}
	return bin, cf
}

// sendmailMC is the instance's sendmail.mc; %[1]s is its directory, %[2]s the cf tree,
// %[3]d the SMTP port, %[4]s the README's INPUT_MAIL_FILTER line (see filterLine). Accepted
// mail stays in the queue (DeliveryMode queueonly), where the test reads it back.
const sendmailMC = "divert(-1)\n" +
	"include(`%[2]s/m4/cf.m4')\n" +
	"divert(0)dnl\n" +
	"OSTYPE(`linux')dnl\n" +
	"define(`confDOMAIN_NAME', `mx.acme-corp.example')dnl\n" +
	"define(`QUEUE_DIR', `%[1]s/queue')dnl\n" +
	"define(`STATUS_FILE', `%[1]s/statistics')dnl\n" +
	"define(`ALIAS_FILE', `')dnl\n" +
	"define(`confPID_FILE', `%[1]s/sendmail.pid')dnl\n" +
	"define(`confHOSTS_FILE', `%[1]s/hosts')dnl\n" +
	"define(`confSERVICE_SWITCH_FILE', `%[1]s/service.switch')dnl\n" +
	"define(`confDONT_PROBE_INTERFACES', `True')dnl\n" +
	"define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl\n" + // the temporary directory is below /tmp
	"define(`confDELIVERY_MODE', `queueonly')dnl\n" +
	"define(`confREFUSE_LA', `1000')dnl\n" + // CI's load (go test -race) must not refuse connections
	"define(`confQUEUE_LA', `1000')dnl\n" +
	"FEATURE(`accept_unresolvable_domains')dnl\n" + // no DNS here
	"RELAY_DOMAIN(`acme-corp.example')dnl\n" + // mail for it is accepted from any client
	"FEATURE(`no_default_msa')dnl\n" + // no submission port 587 for all addresses: instances run side by side
	"DAEMON_OPTIONS(`Port=%[3]d, Addr=127.0.0.1, Name=MTA')dnl\n" +
	"%[4]s" +
	"MAILER(`local')dnl\n" +
	"MAILER(`smtp')dnl\n"

// readmeSendmailSocket is the socket of the README's sendmail-mc snippet.
const readmeSendmailSocket = "unix:/run/block-forged-sender/milter.sock"

// filterLine is the README's sendmail.mc line (snippet sendmail-mc) as it stands, without a
// "dnl" (m4 copies its line end into sendmail.cf, which takes an empty line), with the
// README's socket replaced by socket where the test's daemon listens elsewhere.
func filterLine(t testing.TB, socket string) string {
	t.Helper()
	line := strings.TrimSuffix(testenv.Snippet(t, "sendmail-mc"), "\n")
	if !strings.HasPrefix(line, "INPUT_MAIL_FILTER(") || strings.Contains(line, "\n") || !strings.Contains(line, "S="+readmeSendmailSocket+",") {
		t.Fatalf("README snippet sendmail-mc is not one INPUT_MAIL_FILTER line with S=%s: %q", readmeSendmailSocket, line)
	}
	return strings.Replace(line, readmeSendmailSocket, socket, 1) + "\n"
}

// smInstance is a private Sendmail.
type smInstance struct {
	dir   string
	queue string
	port  int
	cmd   *exec.Cmd
	done  chan error
}

func (sm *smInstance) addr() string { return "127.0.0.1:" + strconv.Itoa(sm.port) }

// startSendmail starts a private Sendmail in the foreground (-bD) with the milter at
// socket (Sendmail's syntax: unix:PATH, inet:PORT@HOST); the test's cleanup stops it.
func startSendmail(t testing.TB, socket string) *smInstance {
	t.Helper()
	bin, cfTree := sendmailTools(t)
	dir, err := os.MkdirTemp("", "bfs-sendmail-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sm := &smInstance{dir: dir, queue: filepath.Join(dir, "queue"), port: freePort(t)}
	must(t, os.Mkdir(sm.queue, 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "hosts"), []byte("127.0.0.1 mx.acme-corp.example localhost\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "service.switch"), []byte("hosts files\naliases files\n"), 0o644))
	mc := filepath.Join(dir, "sendmail.mc")
	must(t, os.WriteFile(mc, fmt.Appendf(nil, sendmailMC, dir, cfTree, sm.port, filterLine(t, socket)), 0o644))
	cfOut, err := exec.Command("m4", mc).Output()
	if err != nil {
		t.Fatalf("m4 %s: %v", mc, err)
	}
	cf := filepath.Join(dir, "sendmail.cf")
	must(t, os.WriteFile(cf, cfOut, 0o644))

	logf, err := os.Create(filepath.Join(dir, "out"))
	must(t, err)
	defer logf.Close()
	// unshare execs sh, which sets the namespace's host name and execs Sendmail: the
	// process started is Sendmail itself, and SIGTERM reaches it.
	sm.cmd = exec.Command("unshare", "--uts", "sh", "-c", `hostname mx.acme-corp.example && exec "$0" -bD -C "$1"`, bin, cf)
	sm.cmd.Stdout, sm.cmd.Stderr = logf, logf
	sm.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	must(t, sm.cmd.Start())
	sm.done = make(chan error, 1)
	go func() { sm.done <- sm.cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-sm.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-sm.done:
		case <-time.After(20 * time.Second):
			syscall.Kill(-sm.cmd.Process.Pid, syscall.SIGKILL)
			<-sm.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "out"))
			t.Logf("sendmail output:\n%s", tail(b, 4000))
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", sm.addr()); err == nil {
			c.Close()
			return sm
		}
		select {
		case err := <-sm.done:
			sm.done <- err
			b, _ := os.ReadFile(filepath.Join(dir, "out"))
			t.Fatalf("sendmail exited: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sendmail does not listen on %s", sm.addr())
		}
	}
}

// queued returns the queue ids of the messages in Sendmail's queue.
func (sm *smInstance) queued(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(sm.queue)
	must(t, err)
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutPrefix(e.Name(), "qf"); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

var smAccepted = regexp.MustCompile(`<-  250 2\.0\.0 (\w+) Message accepted for delivery`)

// TestSendmail runs the README's Sendmail setup: the daemon started as the unit does with the
// README's drop-in (sendmail-dropin: its socket under /run, no Postfix directory), and its
// INPUT_MAIL_FILTER line in a real Sendmail. A partner's message is queued with its header
// and body unchanged and logged with Sendmail's queue id; our domain in From: is refused
// after the final dot, in the envelope at MAIL FROM (Sendmail puts the address before the
// milter's text); with the daemon gone, F=T makes Sendmail refuse for now, never accept
// unchecked.
func TestSendmail(t *testing.T) {
	sendmailTools(t)
	// The settings file: no trusted networks (the test's client is 127.0.0.1), the log on
	// stderr, no metrics port.
	d := startUnit(t, unitStart{rules: testRules, dropin: testenv.Snippet(t, "sendmail-dropin"),
		defaults: "BFS_TRUSTEDNETWORKS=\nBFS_SYSLOG=0\nBFS_METRICSLISTEN=\n"})
	if !strings.HasSuffix(d.socket, strings.TrimPrefix(readmeSendmailSocket, "unix:"+unitRun)) {
		t.Fatalf("the drop-in puts the socket at %s, want %s", d.socket, readmeSendmailSocket)
	}
	sm := startSendmail(t, d.sendmailSpec())
	reason := "forged sender: acme-corp.example used from outside"

	out, code := swaks(t, sm.addr(), send{from: "sales@northwind-traders.example", msg: legit})
	m := smAccepted.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("legitimate: swaks exit %d, transcript:\n%s", code, out)
	}
	id := m[1]
	df, err := os.ReadFile(filepath.Join(sm.queue, "df"+id))
	must(t, err)
	if string(df) != legitBody {
		t.Errorf("queued body %q, want %q", df, legitBody)
	}
	qf, err := os.ReadFile(filepath.Join(sm.queue, "qf"+id))
	must(t, err)
	for _, f := range []string{"From: Partner <sales@northwind-traders.example>\n", "To: " + recipient + "\n", "Subject: quarterly figures\n"} {
		if !bytes.Contains(qf, []byte("H??"+f)) {
			t.Errorf("queued header has no %q:\n%s", f, qf)
		}
	}
	line := d.logLine(t, id)
	want := "block-forged-sender: queue=" + id + " verdict=pass stage=header sender=sales@northwind-traders.example rcpt=" + recipient + " client=127.0.0.1 host=localhost duration="
	if !hasFields(line, want) {
		t.Errorf("log line %q, want it to start %q", line, want)
	}

	out, code = swaks(t, sm.addr(), send{from: "bounce@lure-mailer.example", msg: forged})
	if got := refusal(out); code != 26 || got != "550 5.7.1 "+reason {
		t.Errorf("forged From: swaks exit %d, refusal %q, want 26 and 550 5.7.1; transcript:\n%s", code, got, out)
	}
	headerReject := `block-forged-sender: queue= verdict=reject stage=header reason="` + reason + `" rule=` +
		d.rules + `:1 matched=From:ceo@acme-corp.example sender=bounce@lure-mailer.example rcpt=` + recipient + ` client=127.0.0.1 host=localhost duration=`
	if !logHas(d.logText(t), headerReject) {
		t.Errorf("no log line with %s:\n%s", headerReject, d.logText(t))
	}

	out, code = swaks(t, sm.addr(), send{from: "ceo@acme-corp.example", msg: legit})
	if got := refusal(out); code != 23 || got != "550 5.7.1 <ceo@acme-corp.example>... "+reason {
		t.Errorf("forged envelope: swaks exit %d, refusal %q, want 23 and 550 5.7.1 at MAIL FROM; transcript:\n%s", code, got, out)
	}
	// Unlike Postfix, Sendmail has its queue id at MAIL FROM, and passes it in {i}.
	mailReject := `block-forged-sender: queue= verdict=reject stage=mail reason="` + reason + `" rule=` +
		d.rules + `:1 matched=envelope:ceo@acme-corp.example sender=ceo@acme-corp.example client=127.0.0.1 host=localhost duration=`
	if !logHas(d.logText(t), mailReject) {
		t.Errorf("no log line with %s:\n%s", mailReject, d.logText(t))
	}
	if ids := sm.queued(t); len(ids) != 1 || ids[0] != id {
		t.Errorf("queue holds %v, want only %s", ids, id)
	}

	if err := d.stop(t); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
	out, code = swaks(t, sm.addr(), send{from: "bounce@lure-mailer.example", msg: forged})
	if got := refusal(out); code != 23 || got != "451 4.3.2 Please try again later" {
		t.Errorf("daemon down: swaks exit %d, refusal %q, want 23 and a 451 at MAIL FROM; transcript:\n%s", code, got, out)
	}
	if ids := sm.queued(t); len(ids) != 1 {
		t.Errorf("queue holds %v after the daemon stopped, want only %s", ids, id)
	}
}

// storedMessage rebuilds a queued message as a mail reader would get it: the header fields
// of the qf file (each "H?flags?" prefix dropped, continuation lines kept) and the df body.
func (sm *smInstance) storedMessage(t *testing.T, id string) []byte {
	t.Helper()
	qf, err := os.ReadFile(filepath.Join(sm.queue, "qf"+id))
	must(t, err)
	df, err := os.ReadFile(filepath.Join(sm.queue, "df"+id))
	must(t, err)
	var msg []byte
	inHeader := false
	for _, line := range bytes.SplitAfter(qf, []byte("\n")) {
		switch {
		case bytes.HasPrefix(line, []byte("H?")):
			rest := line[2:]
			if i := bytes.IndexByte(rest, '?'); i >= 0 {
				rest = rest[i+1:]
			}
			msg = append(msg, rest...)
			inHeader = true
		case inHeader && len(line) > 0 && (line[0] == ' ' || line[0] == '\t'):
			msg = append(msg, line...)
		default:
			inHeader = false
		}
	}
	msg = append(msg, '\n')
	return append(msg, df...)
}

// sendmailChanged lists the cases where Sendmail (8.17.1.9 as in Debian 12, the settings of
// sendmailMC) changes or refuses a message itself; see postfixChanged. Unlike Postfix, it
// refuses bare CRs and headers over 32 KiB rather than rewriting or passing them.
var sendmailChanged = map[string]mtaChange{
	"forged-multi-indented-first-line": {outcome{}, "\t  From: \"Treasury\"", "an indented first line is no header field to Sendmail: it ends the header there (adding its own Date and From: <envelope sender> above an empty line it inserts), so the whole message, our From included, is body"},
	"forged-name-folded-before-colon":  {outcome{}, "From\n", "\"From\" without a colon is no header field: Sendmail ends the header and inserts an empty line before it, so the folded From and its address are body"},
	"forged-bnd-gt-from-line":          {outcome{}, ">From ", "the >From line is no header field: Sendmail ends the header there, inserting an empty line, so our From after it is body"},
	"forged-bnd-cr-cr-lf":              {outcome{"421 4.5.0 Bare carriage return (CR) not allowed", 26}, "", "Sendmail refuses a bare CR in DATA itself (8.17.1.9-2+deb12u2, against SMTP smuggling) and closes the connection"},
	"forged-bnd-bare-cr-in-received":   {outcome{"421 4.5.0 Bare carriage return (CR) not allowed", 26}, "", "as above"},
	"legit-body-binary":                {outcome{"421 4.5.0 Bare carriage return (CR) not allowed", 26}, "", "as above: a bare CR in the body"},
	"legit-body-utf16":                 {outcome{"421 4.5.0 Bare carriage return (CR) not allowed", 26}, "", "as above: a bare CR in the body"},
	"forged-size-long-quoted-display":  {outcome{"552 5.6.0 Headers too large (32768 max)", 26}, "", "Sendmail refuses a header over MaxHeadersLength (32 KiB by default) itself"},
	"forged-size-big-header":           {outcome{"552 5.6.0 Headers too large (32768 max)", 26}, "", "as above"},
	"legit-size-long-references":       {outcome{"552 5.6.0 Headers too large (32768 max)", 26}, "", "as above"},
	"legit-size-big-header":            {outcome{"552 5.6.0 Headers too large (32768 max)", 26}, "", "as above"},
}

// TestSendmailCorpus runs the shared corpus through Sendmail (see runCorpus and
// sendmailChanged). A refusal at MAIL FROM reads "550 5.7.1 <sender>... reason" in Sendmail;
// an accepted message is read back from the queue.
func TestSendmailCorpus(t *testing.T) {
	sendmailTools(t)
	dir := corpusDir(t)
	rules, err := os.ReadFile(filepath.Join(dir, "badsenders"))
	must(t, err)
	d := startDaemon(t, string(rules), "--trusted-networks", "127.0.0.2/32")
	sm := startSendmail(t, d.sendmailSpec())
	runCorpus(t, dir, d, corpusMTA{
		send:    func(t *testing.T, s send) (string, int) { return swaks(t, sm.addr(), s) },
		changed: sendmailChanged,
		mailFromRefusal: func(sender, reason string) string {
			return "550 5.7.1 <" + sender + ">... " + reason
		},
		stored: func(t *testing.T, transcript string) (string, []byte, []byte) {
			m := smAccepted.FindStringSubmatch(transcript)
			if m == nil {
				t.Fatalf("no queue id in the transcript:\n%s", tail([]byte(transcript), 3000))
			}
			df, err := os.ReadFile(filepath.Join(sm.queue, "df"+m[1]))
			must(t, err)
			return m[1], df, sm.storedMessage(t, m[1])
		},
		idAtMailFrom: true,
	})
}

// TestSendmailUnqualified: Sendmail refuses an unqualified envelope sender itself, and keeps
// From: <ceo> as it is; the daemon, with no --default-host, qualifies it with Sendmail's
// own name from the j macro (confDOMAIN_NAME here). Monitor mode, so the log names the
// address judged and the message is queued.
func TestSendmailUnqualified(t *testing.T) {
	sendmailTools(t)
	const host = "mx.acme-corp.example"
	d := startDaemon(t, "@"+host+"\tour host name used from outside\n", "--mode", "monitor", "--default-host=")
	sm := startSendmail(t, d.sendmailSpec())
	out, code := swaks(t, sm.addr(), send{from: "ceo", msg: legit})
	if got := refusal(out); code != 23 || got != "553 5.5.4 <ceo>... Domain name required for sender address ceo" {
		t.Errorf("MAIL FROM:<ceo>: swaks exit %d, refusal %q; transcript:\n%s", code, got, out)
	}
	out, code = swaks(t, sm.addr(), send{from: "sales@northwind-traders.example", msg: []byte("From: <ceo>\r\nSubject: unqualified\r\n\r\nHello.\r\n")})
	m := smAccepted.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("From: <ceo>: swaks exit %d, transcript:\n%s", code, out)
	}
	if msg := sm.storedMessage(t, m[1]); !bytes.Contains(msg, []byte("\nFrom: <ceo>\n")) {
		t.Errorf("queued header:\n%s", msg)
	}
	want := "block-forged-sender: queue=" + m[1] + ` verdict=pass stage=header mode=monitor monitor="would reject" reason="our host name used from outside" rule=` + d.rules + ":1 matched=From:ceo@" + host + " sender=sales@northwind-traders.example "
	if line := d.logLine(t, m[1]); !hasFields(line, want) {
		t.Errorf("log line %q, want it to start %q", line, want)
	}
}
