// Package e2e runs the block-forged-sender milter daemon behind a real, private Postfix
// instance, and behind a real, private Sendmail (sendmail_test.go), and talks SMTP to them
// with swaks.
//
// The tests run by default where they can: as root (Postfix's master must start as root)
// with Debian's postfix and swaks installed; elsewhere they skip. With BFS_REQUIRE_TOOLS=1
// a missing tool or privilege fails them instead, so CI cannot go green by skipping;
// BFS_E2E_POSTFIX=0 skips them on purpose (and also fails under BFS_REQUIRE_TOOLS=1).
//
// Each test starts its own instance: its own config, queue and data directories under a
// fresh temporary directory, SMTP on a free loopback port, mail for acme-corp.example
// delivered by virtual(8) into a maildir. No system mail file or queue is touched. The
// daemon is the real program, built once into a temporary directory and run as nobody in
// group postfix on a unix socket of mode 0660, as the README recommends.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"block-forged-sender/internal/testenv"
)

const (
	domain    = "acme-corp.example"
	recipient = "frontoffice@acme-corp.example"
)

// cannotRun ends a test that lacks something it needs: a skip, or a failure when
// BFS_REQUIRE_TOOLS=1, so CI cannot go green by skipping.
func cannotRun(t testing.TB, msg string) {
	t.Helper()
	testenv.CannotRun(t, "%s", msg)
}

// requireTools ends the test with cannotRun unless it can run: Postfix, swaks, root, and
// the programs named in more.
func requireTools(t testing.TB, more ...string) {
	t.Helper()
	if os.Getenv("BFS_E2E_POSTFIX") == "0" {
		cannotRun(t, "BFS_E2E_POSTFIX=0: the Postfix end-to-end tests are switched off")
	}
	var missing []string
	for _, tool := range append([]string{"postfix", "postconf", "swaks", "go"}, more...) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, u := range []string{"postfix", "nobody"} {
		if _, err := user.Lookup(u); err != nil {
			missing = append(missing, "user "+u)
		}
	}
	if len(missing) > 0 {
		cannotRun(t, "postfix end-to-end test needs: "+strings.Join(missing, ", "))
	}
}

// ids returns the uid and gid of a system user.
func ids(t testing.TB, name string) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// instance is a private Postfix.
type instance struct {
	dir  string // everything lives below dir
	conf string // config_directory
	port int    // SMTP on 127.0.0.1:port
}

// options configure an instance.
type options struct {
	// milter is where the daemon listens, as smtpd_milters names it; "" for no milter.
	// main.cf gets the README's snippet for it (see milterConf).
	milter        string
	defaultAction string // milter_default_action; "" keeps Postfix's default (tempfail)
	extra         string // more main.cf lines
	// debian runs Debian's own master.cf (smtpd, cleanup and most others chrooted in the
	// queue directory) with smtpd on the instance's port; otherwise nothing is chrooted.
	debian bool
	// beforeStart runs once the instance's directories and configuration are written,
	// before Postfix starts (as a unit ordered Before= Postfix starts).
	beforeStart func(*instance)
	// saslConf is Cyrus SASL's smtpd.conf, written where Debian's Postfix reads it:
	// $config_directory/sasl (it ignores cyrus_sasl_config_path); "" for none.
	saslConf string
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
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

// mainCF is main.cf but for the milter; %[1]s is the instance directory. startPostfix
// adds the rest. The milter's own settings are Postfix's defaults, as in the README;
// the two timeouts below only shorten the tests that make Postfix wait for a daemon.
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
milter_connect_timeout = 5s
milter_command_timeout = 10s
`

// readmeSocket is the socket of the README's main.cf line, relative to the queue directory.
const readmeSocket = "unix:block-forged-sender/milter.sock"

// milterConf is the README's main.cf snippet for a daemon at spec: postfix-main.cf for a
// unix socket, postfix-main.cf-tcp for TCP, each one smtpd_milters line, with the README's
// socket replaced by spec where the test's daemon listens elsewhere (a directory of its
// own, a free port).
func milterConf(t testing.TB, spec string) string {
	t.Helper()
	name := "postfix-main.cf"
	if strings.HasPrefix(spec, "inet:") {
		name = "postfix-main.cf-tcp"
	}
	s := testenv.Snippet(t, name)
	before, readme, ok := strings.Cut(strings.TrimSuffix(s, "\n"), "smtpd_milters = ")
	if !ok || before != "" || strings.ContainsAny(readme, " \t\n#") {
		t.Fatalf("README snippet %s is not one smtpd_milters line:\n%s", name, s)
	}
	if name == "postfix-main.cf" && readme != readmeSocket {
		t.Fatalf("README snippet %s names %s, the tests expect %s", name, readme, readmeSocket)
	}
	return strings.ReplaceAll(s, readme, spec)
}

// debianMaster is Debian's master.cf as the postfix package ships it, with the README's
// smtpd line (postfix-master.cf: Debian's own, chrooted) on 127.0.0.1:port instead of
// port 25 of every address.
func debianMaster(t testing.TB, port int) string {
	t.Helper()
	const dist = "/usr/share/postfix/master.cf.dist"
	b, err := os.ReadFile(dist)
	if err != nil {
		cannotRun(t, fmt.Sprintf("Debian's master.cf: %v", err))
	}
	line := strings.TrimSuffix(testenv.Snippet(t, "postfix-master.cf"), "\n")
	if !strings.HasPrefix(line, "smtp ") || strings.Contains(line, "\n") {
		t.Fatalf("README snippet postfix-master.cf is not one smtp line: %q", line)
	}
	if !bytes.Contains(b, []byte("\n"+line+"\n")) {
		t.Fatalf("%s has no line %q (the README's)", dist, line)
	}
	return strings.Replace(string(b), "\n"+line+"\n", "\n127.0.0.1:"+strconv.Itoa(port)+strings.TrimPrefix(line, "smtp")+"\n", 1)
}

// startPostfix starts a private instance; the test's cleanup stops it and removes it.
func startPostfix(t testing.TB, opt options) *instance {
	t.Helper()
	dir, err := os.MkdirTemp("", "bfs-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	// Postfix's daemons run as postfix and nobody and open paths below dir.
	must(t, os.Chmod(dir, 0o755))
	in := &instance{dir: dir, conf: filepath.Join(dir, "conf"), port: freePort(t)}
	uid, gid := ids(t, "nobody")
	pfUID, _ := ids(t, "postfix")
	for _, d := range []string{"conf", "queue", "data", "mail"} {
		must(t, os.Mkdir(filepath.Join(dir, d), 0o755))
	}
	must(t, os.Chown(filepath.Join(dir, "data"), pfUID, -1))
	must(t, os.Chown(filepath.Join(dir, "mail"), uid, gid))
	var rest string
	if opt.milter != "" {
		rest += milterConf(t, opt.milter)
	}
	if opt.defaultAction != "" {
		rest += "milter_default_action = " + opt.defaultAction + "\n"
	}
	rest += opt.extra
	// A parameter in opt.extra replaces the base's line (Postfix would warn of the second).
	var conf []string
	for _, l := range strings.SplitAfter(fmt.Sprintf(mainCF, dir, uid, gid), "\n") {
		name, _, _ := strings.Cut(l, " = ")
		if name == "" || !strings.Contains("\n"+opt.extra, "\n"+name+" = ") {
			conf = append(conf, l)
		}
	}
	must(t, os.WriteFile(filepath.Join(in.conf, "main.cf"), []byte(strings.Join(conf, "")+rest), 0o644))
	master := fmt.Sprintf(masterCF, in.port)
	if opt.debian {
		master = debianMaster(t, in.port)
	}
	must(t, os.WriteFile(filepath.Join(in.conf, "master.cf"), []byte(master), 0o644))
	must(t, os.WriteFile(filepath.Join(in.conf, "vmailbox"), []byte(recipient+" frontoffice/\n"), 0o644))
	if opt.saslConf != "" {
		must(t, os.Mkdir(filepath.Join(in.conf, "sasl"), 0o755))
		must(t, os.WriteFile(filepath.Join(in.conf, "sasl", "smtpd.conf"), []byte(opt.saslConf), 0o644))
	}

	t.Cleanup(func() {
		in.stop(t)
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "maillog")); err == nil {
				t.Logf("postfix maillog:\n%s", tail(b, 8000))
			}
		}
		os.RemoveAll(dir)
	})
	if opt.beforeStart != nil {
		opt.beforeStart(in)
	}
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
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func must(t testing.TB, err error) {
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
func (in *instance) stop(t testing.TB) {
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
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid), "status")); err != nil {
			return
		}
		if st, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); bytes.Contains(st, []byte(") Z ")) {
			return // a zombie: exited, waiting for a reaper that is not ours
		}
	}
	t.Logf("postfix master %d still running after stop", pid)
}

// maillog returns Postfix's log so far.
func (in *instance) maillog(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(in.dir, "maillog"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

// send is one SMTP transaction.
type send struct {
	from   string // envelope sender; "<>" or "" for the null sender
	msg    []byte // the message as a file holds it (LF or CRLF line ends)
	client string // local address to send from (127.0.0.1 when ""); see corpus_test.go
	// auth logs in with SMTP AUTH PLAIN as saslUser (auth_test.go), with password, or
	// saslPassword when password is ""; a failed login ends the session unless authOptional.
	auth         bool
	password     string
	authOptional bool
}

// swaks sends one message and returns its transcript and exit status. The message goes
// out as any MTA sends a file: every LF not after a CR becomes CRLF, a final line end is
// added if missing, leading dots are doubled, other bytes (bare CR, NUL) travel as they are.
// swaks's own DATA rewriting (header rebuilding, mbox From_ stripping) is off.
func (in *instance) swaks(t *testing.T, s send) (string, int) {
	t.Helper()
	return swaks(t, in.addr(), s)
}

// swaks sends s to the SMTP server at addr; see [instance.swaks].
func swaks(t *testing.T, addr string, s send) (string, int) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "data")
	must(t, os.WriteFile(f, smtpData(s.msg), 0o644))
	from := s.from
	if from == "" {
		from = "<>" // swaks's spelling of the null sender
	}
	client := s.client
	if client == "" {
		client = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	args := []string{"--server", addr, "--local-interface", client,
		"--helo", "client.lure-mailer.example", "--from", from, "--to", recipient,
		"--no-data-fixup", "--data", "@" + f, "--timeout", "60", "--suppress-data"}
	if s.auth {
		password := s.password
		if password == "" {
			password = saslPassword
		}
		args = append(args, "--auth", "PLAIN", "--auth-user", saslUser, "--auth-password", password)
		if s.authOptional {
			args = append(args, "--auth-optional")
		}
	}
	cmd := exec.CommandContext(ctx, "swaks", args...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("swaks: %v", err)
	}
	// A server that closes the connection after its reply (Sendmail's 421 for a bare CR)
	// races swaks's QUIT: swaks exits 26 when it sees the close first, and dies of SIGPIPE
	// when its write comes first. The same outcome.
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGPIPE &&
		strings.Contains(string(out), "*** Remote host closed connection unexpectedly.") {
		return string(out), 26
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// smtpData is msg in SMTP DATA form, without the final CRLF swaks adds after the dot.
func smtpData(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+len(msg)/20+8)
	for len(msg) > 0 {
		line, rest, _ := bytes.Cut(msg, []byte("\n"))
		msg = rest
		if len(line) > 0 && line[0] == '.' {
			out = append(out, '.')
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		out = append(out, line...)
		out = append(out, '\r', '\n')
	}
	return append(out, '.')
}

// queuedID returns the queue id from "250 2.0.0 Ok: queued as ID" in a transcript.
func queuedID(transcript string) string {
	_, after, ok := strings.Cut(transcript, "Ok: queued as ")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(after, "\n")
	return strings.TrimSpace(id)
}

// deliveredByID waits for the message Postfix queued as id to land in the maildir and
// returns it. Postfix's Received field names the queue id ("with ESMTP id ID").
func (in *instance) deliveredByID(t *testing.T, id string) []byte {
	t.Helper()
	dir := filepath.Join(in.dir, "mail", "frontoffice", "new")
	want := []byte(" id " + id + "\n") // "with ESMTP id", or ESMTPA after AUTH
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			f, err := os.Open(p)
			must(t, err)
			start := make([]byte, 2048) // Postfix's own Received field comes first
			n, _ := io.ReadFull(f, start)
			f.Close()
			if bytes.Contains(start[:n], want) {
				b, err := os.ReadFile(p)
				must(t, err)
				return b
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s not delivered; maildir holds %d messages", id, len(ents))
		}
	}
}

// count returns how many messages the maildir holds.
func (in *instance) count() int {
	ents, _ := os.ReadDir(filepath.Join(in.dir, "mail", "frontoffice", "new"))
	return len(ents)
}

// body is the part of a delivered message after the header.
func body(msg []byte) []byte {
	if _, b, ok := bytes.Cut(msg, []byte("\n\n")); ok {
		return b
	}
	return nil
}

// Building the daemon, once for all tests.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// program returns the path of block-forged-sender as `make build` builds it.
func program(t testing.TB) string {
	t.Helper()
	return filepath.Join(testenv.Binaries(t), "block-forged-sender")
}

// daemon is one running block-forged-sender milter.
type daemon struct {
	cmd    *exec.Cmd
	dir    string // owned by nobody:postfix; holds the rules, the socket and the log
	rules  string // the rules text
	socket string // the unix socket; "" on TCP
	log    string // the daemon's stderr
	spec   string // smtpd_milters value
	done   chan error
}

// startDaemon writes rules into a fresh directory and starts the daemon on a unix socket
// there, as nobody in group postfix, with --default-host acme-corp.example and args after
// the standard ones (a later flag wins: "--default-host=" unsets it). The test's cleanup
// stops it with SIGTERM.
func startDaemon(t testing.TB, rules string, args ...string) *daemon {
	t.Helper()
	return startDaemonOn(t, "", nil, rules, args...)
}

// startDaemonTCP is startDaemon listening on TCP as the README's postfix-default-tcp
// snippet has it (BFS_LISTEN in /etc/default/block-forged-sender), on a free port instead
// of 9318; spec is then postfix-main.cf-tcp's smtpd_milters value for that port.
func startDaemonTCP(t testing.TB, rules string, args ...string) *daemon {
	t.Helper()
	const readmePort = "9318"
	port := strconv.Itoa(freePort(t))
	env := strings.Fields(strings.ReplaceAll(testenv.Snippet(t, "postfix-default-tcp"), readmePort, port))
	conf := strings.ReplaceAll(testenv.Snippet(t, "postfix-main.cf-tcp"), readmePort, port)
	_, spec, _ := strings.Cut(strings.TrimSpace(conf), " = ")
	if len(env) != 1 || !strings.HasPrefix(env[0], "BFS_LISTEN=inet:") || !strings.HasPrefix(spec, "inet:") {
		t.Fatalf("README's TCP snippets: %q and %q", env, conf)
	}
	return startDaemonOn(t, spec, env, rules, args...)
}

// startDaemonOn is startDaemon with the daemon at spec (smtpd_milters syntax; "" is
// milter.sock in the daemon's directory) and env added to its environment. Without a
// BFS_LISTEN in env, --listen spec tells the daemon where to listen.
func startDaemonOn(t testing.TB, spec string, env []string, rules string, args ...string) *daemon {
	t.Helper()
	bin := program(t)
	dir, err := os.MkdirTemp("", "bfs-milter-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	uid, _ := ids(t, "nobody")
	_, pfGID := ids(t, "postfix")
	must(t, os.Chown(dir, uid, pfGID))
	must(t, os.Chmod(dir, 0o750))
	d := &daemon{dir: dir, rules: filepath.Join(dir, "badsenders"), socket: filepath.Join(dir, "milter.sock"), log: filepath.Join(dir, "log")}
	d.spec = "unix:" + d.socket
	if spec != "" {
		d.spec = spec
		d.socket, _ = strings.CutPrefix(spec, "unix:")
		if strings.HasPrefix(spec, "inet:") {
			d.socket = ""
		}
	}
	must(t, os.WriteFile(d.rules, []byte(rules), 0o644))
	must(t, os.Chown(d.rules, uid, pfGID))
	logf, err := os.Create(d.log)
	must(t, err)
	defer logf.Close()
	// A flag on the command line wins over the environment: --listen and --default-host
	// only where env does not set them.
	inEnv := func(name string) bool {
		return slices.ContainsFunc(env, func(v string) bool { return strings.HasPrefix(v, name+"=") })
	}
	std := []string{"milter", "--rules", d.rules}
	if !inEnv("BFS_DEFAULTHOST") {
		std = append(std, "--default-host", domain)
	}
	if !inEnv("BFS_LISTEN") {
		std = append(std, "--listen", d.spec)
	}
	d.cmd = exec.Command(bin, append(std, args...)...)
	d.cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(pfGID)}}
	d.start(t)
	if d.socket != "" {
		fi, err := os.Stat(d.socket)
		must(t, err)
		if fi.Mode().Perm() != 0o660 {
			t.Errorf("socket mode %v, want 0660", fi.Mode().Perm())
		}
	}
	return d
}

// start starts d.cmd, its output going to d.log, stops it when the test ends (showing the
// log of a failed test), and waits until it accepts connections on d.socket, or on the TCP
// address of d.spec when there is no socket.
func (d *daemon) start(t testing.TB) {
	t.Helper()
	must(t, d.cmd.Start())
	d.done = make(chan error, 1)
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("daemon log:\n%s", tail([]byte(d.logText(t)), 8000))
		}
	})
	network, addr := "unix", d.socket
	if d.socket == "" {
		network, addr = "tcp", strings.TrimPrefix(d.spec, "inet:")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial(network, addr); err == nil {
			c.Close()
			return
		}
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("daemon exited: %v\n%s", err, d.logText(t))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon does not listen on %s:\n%s", d.spec, d.logText(t))
		}
	}
}

// sendmailSpec is the daemon's socket in Sendmail's syntax: unix:PATH or inet:PORT@HOST.
func (d *daemon) sendmailSpec() string {
	if d.socket != "" {
		return "unix:" + d.socket
	}
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(d.spec, "inet:"))
	return "inet:" + port + "@" + host
}

// stop sends SIGTERM and waits for the daemon to exit; it returns the exit error.
func (d *daemon) stop(t testing.TB) error {
	t.Helper()
	select { // exited already (the Wait goroutine owns cmd.ProcessState)
	case err := <-d.done:
		d.done <- err
		return err
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(40 * time.Second):
		d.cmd.Process.Kill()
		t.Errorf("daemon ignored SIGTERM for 40s")
		return <-d.done
	}
}

// logText returns what the daemon has logged so far.
func (d *daemon) logText(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(d.log)
	must(t, err)
	return string(b)
}

// hasFields is [testenv.HasLogFields].
func hasFields(line, want string) bool { return testenv.HasLogFields(line, want) }

// logHas reports whether a line of text holds every field of want.
func logHas(text, want string) bool { return logCount(text, want) > 0 }

// logCount is how many lines of text hold every field of want.
func logCount(text, want string) int {
	n := 0
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "block-forged-sender: ") && hasFields(l, want) {
			n++
		}
	}
	return n
}

// logLine waits for the daemon's log line of the message with this queue id and returns
// it; "" after 10 s.
func (d *daemon) logLine(t testing.TB, queueID string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range strings.Split(d.logText(t), "\n") {
			if strings.Contains(l, " queue="+queueID+" ") {
				return l
			}
		}
	}
	return ""
}
