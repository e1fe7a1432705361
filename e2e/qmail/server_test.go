package qmail

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/textproto"
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

// server is one tcpserver running qmail-smtpd, started as a qmail-smtpd run script starts
// it (optionally under softlimit), with its own tcprules CDB and its own log: tcpserver's
// stderr, which qmail-smtpd, the queue program and everything below them inherit.
type server struct {
	dir  string
	port int
	log  string
	cmd  *exec.Cmd
	seen int // bytes of the log that checkLog has looked at
}

// serverOpts are the run script's choices.
type serverOpts struct {
	tcpsmtp   string   // the text of tcp.smtp, compiled by the real tcprules ...
	cdb       string   // ... unless this names a CDB compiled already
	softlimit int64    // softlimit -m N around tcpserver; 0 for none
	env       []string // more of the run script's environment
}

// startServer compiles opt.tcpsmtp in dir and starts tcpserver on 127.0.0.1 on a port
// the kernel picks (tcpserver -1 prints it). The test's cleanup kills its process group.
func (h *qmailHome) startServer(t testing.TB, dir string, opt serverOpts) *server {
	t.Helper()
	cdb := opt.cdb
	if cdb == "" {
		cdb = compileTcprules(t, dir, opt.tcpsmtp)
	}
	s := &server{dir: dir, log: filepath.Join(dir, "log")}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := []string{"tcpserver", "-v", "-1", "-R", "-H", "-l", hostname, "-x", cdb,
		"-u", strconv.Itoa(h.uid), "-g", strconv.Itoa(h.gid),
		"127.0.0.1", "0", filepath.Join(h.dir, "bin", "qmail-smtpd")}
	if opt.softlimit > 0 {
		args = append([]string{"softlimit", "-m", strconv.FormatInt(opt.softlimit, 10)}, args...)
	}
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Dir = dir
	s.cmd.Env = append([]string{
		"PATH=/usr/bin:/bin",
		"BFS_RULES=" + h.rules,
		"BFS_QMAILQUEUE=" + filepath.Join(h.dir, "bin", "qmail-queue"),
		"BFS_DEFAULTHOST=" + ourDomain,
	}, opt.env...)
	s.cmd.Stderr = logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop() })
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		port <- strings.TrimSpace(line)
	}()
	select {
	case p := <-port:
		if s.port, err = strconv.Atoi(p); err != nil {
			t.Fatalf("tcpserver -1 printed %q, not a port; its log:\n%s", p, s.logText(t))
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("tcpserver printed no port within 10s; its log:\n%s", s.logText(t))
	}
	return s
}

// stop kills the server's process group: tcpserver and any session still running.
func (s *server) stop() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}

// compileTcprules writes text to dir/tcp.smtp and compiles it with tcprules, as an
// administrator does; it returns the CDB's path.
func compileTcprules(t testing.TB, dir, text string) string {
	t.Helper()
	src, cdb := filepath.Join(dir, "tcp.smtp"), filepath.Join(dir, "tcp.smtp.cdb")
	if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	c := exec.Command("tcprules", cdb, cdb+".tmp")
	c.Stdin = in
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("tcprules: %v\n%s", err, out)
	}
	return cdb
}

func (s *server) logText(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(s.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitIdle waits until no process but tcpserver itself holds the server's log open: every
// session, and every queue program, filter and qmail-queue below it, has ended. A session
// that has not ended after 10 seconds fails the test (nothing may hang).
func (s *server) waitIdle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		holders := s.logHolders()
		if len(holders) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s, processes still hold the session's log open: %v", holders)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logHolders returns the command lines of the processes other than tcpserver that have
// the server's log open.
func (s *server) logHolders() []string {
	var holders []string
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if pid == s.cmd.Process.Pid {
			continue
		}
		fds, _ := filepath.Glob(p + "/fd/*")
		for _, fd := range fds {
			if target, err := os.Readlink(fd); err == nil && target == s.log {
				cmdline, _ := os.ReadFile(p + "/cmdline")
				holders = append(holders, fmt.Sprintf("%d %q", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
				break
			}
		}
	}
	return holders
}

// mail is one message to send: the envelope and the message as qmail stores it (LF line
// ends, not dot-stuffed).
type mail struct {
	sender string
	rcpt   string // recipient if ""
	data   string
}

// result is what the client saw.
type result struct {
	reply      string // the reply to the final dot: "554 ..." (code, space, text)
	start, end time.Time
	queuePid   int    // the pid in qmail-queue's Received line of the queued message
	logPid     string // pid= of the program's log line, if any
}

// transaction sends m from the local address client ("" for 127.0.0.1) and asserts what
// must come of it: the reply to the final dot (exactly; "250" stands for any "250 ok TIME
// qp PID", and then the message must be queued exactly, else not at all), that every
// process of the session ends, and the program's log line (fields; nil for no line).
// marker is a string found in m's header alone.
func (h *qmailHome) transaction(t testing.TB, s *server, client string, m mail, marker string, vanish bool, reply string, log map[string]string) result {
	t.Helper()
	r := s.send(t, client, m, vanish)
	s.waitIdle(t)
	if client == "" {
		client = "127.0.0.1"
	}
	if reply == "250" {
		r.queuePid = h.checkQueued(t, marker, client, m, r)
	} else {
		if r.reply != reply {
			t.Errorf("reply %q, want %q", r.reply, reply)
		}
		h.checkNotQueued(t, marker)
	}
	if len(log) == 0 {
		log = nil
	}
	r.logPid = s.checkLog(t, log)["pid"]
	return r
}

// send runs one SMTP transaction from the local address from ("" for 127.0.0.1):
// connect, EHLO, MAIL, RCPT, DATA, the message, QUIT. Every step before the final dot
// must succeed; the reply to the dot is returned. With vanish set the client closes the
// connection halfway through the message instead, and the reply is "".
func (s *server) send(t testing.TB, from string, m mail, vanish bool) result {
	t.Helper()
	r := result{start: time.Now()}
	c, err := dial(s.port, from)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r.reply, err = c.transaction(m, vanish); err != nil {
		t.Fatal(err)
	}
	r.end = time.Now()
	return r
}

// client is a minimal SMTP client (RFC 5321), enough for one transaction at a time.
type client struct {
	conn net.Conn
	text *textproto.Reader
}

func dial(port int, from string) (*client, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := d.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{conn: conn, text: textproto.NewReader(bufio.NewReader(conn))}, nil
}

func (c *client) Close() error { return c.conn.Close() }

// reply reads one reply and returns it as "CODE text" (the lines of a multi-line reply
// joined by newlines).
func (c *client) reply() (string, error) {
	code, msg, err := c.text.ReadResponse(0)
	if err != nil {
		return "", err
	}
	return strconv.Itoa(code) + " " + msg, nil
}

// cmd sends one command and requires a reply with the code want.
func (c *client) cmd(line string, want int) error {
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		return err
	}
	got, err := c.reply()
	if err != nil {
		return fmt.Errorf("%s: %v", line, err)
	}
	if !strings.HasPrefix(got, strconv.Itoa(want)+" ") {
		return fmt.Errorf("%s: reply %q, want %d", line, got, want)
	}
	return nil
}

func (c *client) transaction(m mail, vanish bool) (string, error) {
	if got, err := c.reply(); err != nil || !strings.HasPrefix(got, "220 ") {
		return "", fmt.Errorf("greeting %q, %v", got, err)
	}
	rcpt := m.rcpt
	if rcpt == "" {
		rcpt = recipient
	}
	for _, step := range []struct {
		line string
		code int
	}{{"EHLO " + helloName, 250}, {"MAIL FROM:<" + m.sender + ">", 250}, {"RCPT TO:<" + rcpt + ">", 250}, {"DATA", 354}} {
		if err := c.cmd(step.line, step.code); err != nil {
			return "", err
		}
	}
	data := smtpData(m.data)
	if vanish {
		_, err := c.conn.Write(data[:len(data)/2])
		return "", err
	}
	if _, err := c.conn.Write(append(data, ".\r\n"...)); err != nil {
		return "", err
	}
	got, err := c.reply()
	if err != nil {
		return "", fmt.Errorf("reply to the final dot: %v", err)
	}
	return got, c.cmd("QUIT", 221)
}

// smtpData is msg as it goes over the wire: CRLF line ends, dot-stuffed.
func smtpData(msg string) []byte {
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(msg, "\n") {
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, ".") {
			b.WriteByte('.')
		}
		b.WriteString(strings.TrimSuffix(line, "\n"))
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// message returns a message from the header sender from, whose Message-ID is id (so the
// queue can be searched for it), padded with body lines to at least size bytes. It holds
// what a byte-for-byte copy could lose: a folded field, leading dots, 8-bit text, a tab, a
// bare CR, trailing blanks.
func message(from, id string, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\nTo: <%s>\nSubject: quarterly\n\tfigures\nMessage-ID: <%s>\n\nHello,\n", from, recipient, id)
	b.WriteString("From: ceo@acme-corp.example is in the body, which is never read as header.\n")
	b.WriteString(".a line with a leading dot, stuffed on the wire\n..and one with two\n")
	b.WriteString("Gr\u00fc\u00dfe aus K\u00f6ln, a\ttab, a bare CR\rinside a line, trailing blanks   \n")
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "line %04d of the figures: 1234567890 abcdefghijklmnopqrstuvwxyz\n", i)
	}
	return b.String()
}

// queuedFile is one message in the queue's mess/ directory.
type queuedFile struct {
	path string
	data []byte
	todo bool // queue/todo/INODE exists: qmail-queue finished it
}

// queued returns the messages in the queue that contain marker.
func (h *qmailHome) queued(t testing.TB, marker string) []queuedFile {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(h.dir, "queue", "mess", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var found []queuedFile
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // qmail-queue removed it meanwhile (a failed message)
		}
		if !bytes.Contains(b, []byte(marker)) {
			continue
		}
		_, err = os.Stat(filepath.Join(h.dir, "queue", "todo", filepath.Base(f)))
		found = append(found, queuedFile{path: f, data: b, todo: err == nil})
	}
	return found
}

var (
	// qmail-queue's own Received line, as the SMTP user (qmaild) runs it.
	queueReceived = regexp.MustCompile(`^Received: \(qmail ([0-9]+) invoked from network\); ([0-9]{1,2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}) -0000\n`)
	// qmail-smtpd's, "with SMTP" even after EHLO (tcpserver -H: no host name).
	smtpdReceived = regexp.MustCompile(`^Received: from unknown \(HELO ` + regexp.QuoteMeta(helloName) + `\) \(([0-9.]+)\)\n  by ` +
		regexp.QuoteMeta(hostname) + ` with SMTP; ([0-9]{1,2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}) -0000\n`)
	qpReply = regexp.MustCompile(`^250 ok [0-9]+ qp ([0-9]+)$`)
)

// checkQueued asserts that the message m, sent from the address client, was queued once,
// exactly: qmail-queue's Received line, qmail-smtpd's, then the message byte for byte, both
// lines dated within the transaction. It returns the pid of qmail-queue's line.
func (h *qmailHome) checkQueued(t testing.TB, marker, client string, m mail, r result) int {
	t.Helper()
	if !qpReply.MatchString(r.reply) {
		t.Fatalf("reply %q, want 250 ok TIME qp PID", r.reply)
	}
	found := h.queued(t, marker)
	if len(found) != 1 {
		t.Fatalf("%d messages with %s in the queue, want 1", len(found), marker)
	}
	q := found[0]
	if !q.todo {
		t.Errorf("%s is in mess/ but not in todo/: qmail-queue did not finish it", q.path)
	}
	rest := q.data
	mq := queueReceived.FindSubmatch(rest)
	if mq == nil {
		t.Fatalf("queued message does not start with qmail-queue's Received line:\n%s", head(rest))
	}
	rest = rest[len(mq[0]):]
	ms := smtpdReceived.FindSubmatch(rest)
	if ms == nil {
		t.Fatalf("qmail-queue's Received line is not followed by qmail-smtpd's:\n%s", head(q.data))
	}
	rest = rest[len(ms[0]):]
	if string(ms[1]) != client {
		t.Errorf("qmail-smtpd's Received line names client %s, want %s", ms[1], client)
	}
	// qmail dates its Received lines with time(2), which Linux answers from the coarse
	// clock: up to a scheduler tick behind the clock Go reads, so a transaction that starts
	// just after a full second can be dated the second before.
	const coarse = 50 * time.Millisecond
	for _, d := range [][]byte{mq[2], ms[2]} {
		when, err := time.Parse("2 Jan 2006 15:04:05", string(d))
		if err != nil {
			t.Errorf("Received date %q: %v", d, err)
		} else if when.Before(r.start.UTC().Add(-coarse).Truncate(time.Second)) || when.After(r.end.UTC()) {
			t.Errorf("Received date %s is outside the transaction (%s to %s)", when, r.start.UTC(), r.end.UTC())
		}
	}
	if string(rest) != m.data {
		t.Errorf("queued message after the two Received lines:\n%q\nwant the message as sent:\n%q", rest, m.data)
	}
	pid, _ := strconv.Atoi(string(mq[1]))
	return pid
}

// checkNotQueued asserts that nothing with marker is in the queue.
func (h *qmailHome) checkNotQueued(t testing.TB, marker string) {
	t.Helper()
	if found := h.queued(t, marker); len(found) != 0 {
		t.Errorf("%d messages with %s in the queue (%s), want none", len(found), marker, found[0].path)
	}
}

func head(b []byte) []byte {
	if len(b) > 600 {
		return b[:600]
	}
	return b
}

// checkLog asserts that the server's log, since checkLog last looked, holds exactly one
// line of the program's (want non-nil) with the fields in want, or none (want nil). The
// log schema is the lead's (issue 11): what a line must say is decided here alone.
func (s *server) checkLog(t testing.TB, want map[string]string) map[string]string {
	t.Helper()
	all := s.logText(t)
	text := all[s.seen:]
	s.seen = len(all)
	var ours []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, testenv.LogPrefix) {
			ours = append(ours, line)
		}
	}
	if want == nil {
		if len(ours) != 0 {
			t.Errorf("log has lines of the program, want none:\n%s", text)
		}
		return nil
	}
	if len(ours) != 1 {
		t.Fatalf("log has %d lines of the program, want 1:\n%s", len(ours), text)
	}
	fields, err := testenv.LogValues(ours[0])
	if err != nil {
		t.Fatalf("log line %q: %v", ours[0], err)
	}
	for k, v := range want {
		got, ok := fields[k]
		if !ok {
			t.Errorf("log line %q has no %s=, want %s=%q", ours[0], k, k, v)
		} else if got != v {
			t.Errorf("log line %q: %s=%q, want %q", ours[0], k, got, v)
		}
	}
	return fields
}
