package e2e

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"block-forged-sender/internal/testenv"
)

// unit is what the tests take from contrib/block-forged-sender-milter.service.
type unit struct {
	path      string
	user      string
	group     string
	env       []string // the Environment= assignments, in order
	envFile   string   // EnvironmentFile=, without its "-"
	startPre  []string // ExecStartPre=, without its "+"
	start     []string // ExecStart=
	runtime   string   // RuntimeDirectory=
	readWrite []string // ReadWritePaths=, without "-"
}

// readUnit parses the unit's [Service] section, as far as the tests use it, and then that of
// each drop-in as systemd would apply it (a later setting replaces an earlier one, an empty
// ExecStartPre= clears the list, Environment= adds). It takes no quoting and no
// specifiers: a value the simple reading here would get wrong fails the test.
func readUnit(t testing.TB, dropins ...string) unit {
	t.Helper()
	u := unit{path: filepath.Join(testenv.Root(), "contrib", "block-forged-sender-milter.service")}
	b, err := os.ReadFile(u.path)
	must(t, err)
	for _, text := range append([]string{string(b)}, dropins...) {
		u.parse(t, text)
	}
	return u
}

func (u *unit) parse(t testing.TB, text string) {
	t.Helper()
	section := ""
	var line string
	for _, raw := range strings.Split(text, "\n") {
		if strings.HasSuffix(raw, "\\") {
			line += strings.TrimSuffix(raw, "\\") + " "
			continue
		}
		line, raw = "", line+raw
		raw = strings.TrimSpace(raw)
		if raw == "" || raw[0] == '#' || raw[0] == ';' {
			continue
		}
		if raw[0] == '[' {
			section = raw
			continue
		}
		key, value, ok := strings.Cut(raw, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", u.path, raw)
		}
		if section != "[Service]" {
			continue
		}
		if strings.ContainsAny(value, `"'%`) {
			t.Fatalf("%s: %s=%s: quotes and specifiers are beyond this test's reading", u.path, key, value)
		}
		switch key {
		case "User":
			u.user = value
		case "Group":
			u.group = value
		case "Environment":
			u.env = append(u.env, strings.Fields(value)...)
		case "EnvironmentFile":
			u.envFile = strings.TrimPrefix(value, "-")
		case "ExecStartPre":
			if value == "" {
				u.startPre = nil
				continue
			}
			if u.startPre != nil {
				t.Fatalf("%s: more than one ExecStartPre", u.path)
			}
			u.startPre = strings.Fields(strings.TrimPrefix(value, "+"))
		case "ExecStart":
			u.start = strings.Fields(value)
		case "RuntimeDirectory":
			u.runtime = value
		case "ReadWritePaths":
			for _, p := range strings.Fields(value) {
				u.readWrite = append(u.readWrite, strings.TrimPrefix(p, "-"))
			}
		}
	}
}

// The unit's paths, which the tests move into their own directories.
const (
	unitQueue = "/var/spool/postfix"
	unitRun   = "/run"
	unitEtc   = "/etc/block-forged-sender"
	unitBin   = "/usr/local/bin"
)

// unitStart describes one start of the daemon as the unit does it.
type unitStart struct {
	queue    string // Postfix's queue directory, for the unit's /var/spool/postfix
	rules    string // the text of /etc/block-forged-sender/badsenders
	dropin   string // a drop-in (systemctl edit), or ""
	defaults string // the lines of /etc/default/block-forged-sender
}

// startUnit starts the daemon the way the unit (with its drop-in) does: with its
// Environment= settings and then those of the defaults file (the unit's EnvironmentFile,
// which systemd reads after Environment=, so its settings win), its RuntimeDirectory made,
// its ExecStartPre run as root, and its ExecStart as nobody (standing in for the unit's user
// bfs) in the unit's group (nogroup when that group does not exist here, as smmsp without
// Sendmail installed). The unit's paths are moved into the test's directories:
// /var/spool/postfix to us.queue, /run to a fresh directory, /etc/block-forged-sender to a
// fresh directory holding us.rules as badsenders, /usr/local/bin to the programs as make
// build builds them. The test's cleanup stops the daemon.
func startUnit(t testing.TB, us unitStart) *daemon {
	t.Helper()
	var dropins []string
	if us.dropin != "" {
		dropins = append(dropins, us.dropin)
	}
	u := readUnit(t, dropins...)
	if u.user != "bfs" || u.envFile != "/etc/default/block-forged-sender" || len(u.start) == 0 {
		t.Fatalf("%s: User=%s EnvironmentFile=%s ExecStart=%q, want bfs, /etc/default/block-forged-sender, a command", u.path, u.user, u.envFile, u.start)
	}
	temp := func(prefix string) string {
		d, err := os.MkdirTemp("", prefix)
		must(t, err)
		t.Cleanup(func() { os.RemoveAll(d) })
		must(t, os.Chmod(d, 0o755))
		return d
	}
	etc, run := temp("bfs-etc-"), temp("bfs-run-")
	uid, _ := ids(t, "nobody")
	group := u.group
	if _, err := user.LookupGroup(group); err != nil {
		group = "nogroup"
	}
	g, err := user.LookupGroup(group)
	must(t, err)
	gid, _ := strconv.Atoi(g.Gid)
	must(t, os.WriteFile(filepath.Join(etc, "badsenders"), []byte(us.rules), 0o644))
	// The daemon compiles the rules itself where it may write: let it, as a
	// "block-forged-sender compile" run by root would leave a current CDB.
	must(t, os.Chown(etc, uid, gid))
	queue := us.queue
	if queue == "" {
		queue = filepath.Join(run, "no-postfix-queue")
	}
	move := strings.NewReplacer(unitQueue, queue, unitRun+"/", run+"/", unitEtc, etc, unitBin, testenv.Binaries(t))
	env := []string{"PATH=/usr/bin:/bin"}
	for _, e := range u.env {
		env = append(env, move.Replace(e))
	}
	for _, l := range strings.Split(us.defaults, "\n") {
		if l = strings.TrimSpace(l); l != "" && l[0] != '#' {
			env = append(env, l)
		}
	}
	if u.runtime != "" {
		rd := filepath.Join(run, u.runtime)
		must(t, os.Mkdir(rd, 0o750))
		must(t, os.Chown(rd, uid, gid))
	}
	if len(u.startPre) > 0 {
		// As root ("+"): install -d -o bfs -g postfix ..., with nobody and the group here.
		pre := make([]string, len(u.startPre))
		for i, a := range u.startPre {
			switch pre[i] = move.Replace(a); a {
			case u.user:
				pre[i] = "nobody"
			case u.group:
				pre[i] = group
			}
		}
		if out, err := exec.Command(pre[0], pre[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("ExecStartPre %q: %v\n%s", pre, err, out)
		}
	}

	d := &daemon{dir: etc, rules: filepath.Join(etc, "badsenders"), log: filepath.Join(etc, "log")}
	for _, e := range env { // the last one holds, as for systemd and exec
		if v, ok := strings.CutPrefix(e, "BFS_LISTEN="); ok {
			d.spec = v
		}
	}
	d.socket = strings.TrimPrefix(d.spec, "unix:")
	if !strings.HasPrefix(d.spec, "unix:") {
		t.Fatalf("unit: BFS_LISTEN=%s, want a unix socket", d.spec)
	}
	logf, err := os.Create(d.log)
	must(t, err)
	defer logf.Close()
	start := make([]string, len(u.start))
	for i, a := range u.start {
		start[i] = move.Replace(a)
	}
	d.cmd = exec.Command(start[0], start[1:]...)
	d.cmd.Env = env
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	d.start(t)
	return d
}

// TestDebianSetup runs the README's Postfix setup as a Debian administrator gets it: the
// daemon started with the unit's commands and settings (startUnit), main.cf with the
// README's line as it stands (the socket relative to the queue directory), and Debian's own
// master.cf, which runs smtpd and cleanup chrooted in the queue directory. The chroot holds
// only what "postfix start" makes there, none of the files Debian's configure-instance.sh
// copies in (etc/hosts, etc/resolv.conf, libnss_*...): the milter needs none of them. The
// same runs with nothing chrooted, where the relative path is taken from the daemons'
// working directory, the queue directory. Each time a partner's message is delivered, our
// domain in From: is refused after the final dot and in the envelope at MAIL FROM, and the
// socket is where and as the README says.
func TestDebianSetup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		debian bool
	}{{"chroot", true}, {"no-chroot", false}} {
		t.Run(tc.name, func(t *testing.T) {
			requireTools(t)
			metrics := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
			var d *daemon
			pf := startPostfix(t, options{milter: readmeSocket, debian: tc.debian, beforeStart: func(pf *instance) {
				d = startUnit(t, unitStart{queue: filepath.Join(pf.dir, "queue"), rules: testRules,
					defaults: "# /etc/default/block-forged-sender\nBFS_SYSLOG=0\nBFS_TRUSTEDNETWORKS=127.0.0.1/32\nBFS_METRICSLISTEN=" + metrics + "\n"})
			}})

			// The socket: bfs (here nobody):postfix 0660 in a directory of mode 0750.
			queue := filepath.Join(pf.dir, "queue")
			if d.socket != filepath.Join(queue, "block-forged-sender", "milter.sock") {
				t.Errorf("socket %s, want block-forged-sender/milter.sock in the queue directory", d.socket)
			}
			nobody, _ := ids(t, "nobody")
			_, pfGID := ids(t, "postfix")
			for path, mode := range map[string]os.FileMode{filepath.Dir(d.socket): 0o750, d.socket: 0o660} {
				fi, err := os.Stat(path)
				must(t, err)
				st := fi.Sys().(*syscall.Stat_t)
				if fi.Mode().Perm() != mode || int(st.Uid) != nobody || int(st.Gid) != pfGID {
					t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", path, fi.Mode().Perm(), st.Uid, st.Gid, mode, nobody, pfGID)
				}
			}
			if tc.debian {
				// Debian's master.cf, as the instance runs it: smtpd chrooted.
				out, err := exec.Command("postconf", "-c", pf.conf, "-M", "127.0.0.1:"+strconv.Itoa(pf.port)+"/inet").Output()
				if f := strings.Fields(string(out)); err != nil || len(f) < 8 || f[4] != "y" || f[7] != "smtpd" {
					t.Fatalf("postconf -M: %v, %q; want smtpd chrooted", err, out)
				}
			}

			// The unit trusts 127.0.0.0/8; the settings file narrows that to 127.0.0.1, so
			// mail from 127.0.0.2 is judged.
			const outside = "127.0.0.2"
			out, code := pf.swaks(t, send{from: "sales@northwind-traders.example", msg: legit, client: outside})
			id := queuedID(out)
			if code != 0 || id == "" {
				t.Fatalf("legitimate: swaks exit %d, transcript:\n%s", code, out)
			}
			if got := string(body(pf.deliveredByID(t, id))); got != legitBody {
				t.Errorf("delivered body = %q, want %q", got, legitBody)
			}
			want := "block-forged-sender: queue=" + id + " verdict=pass stage=header sender=sales@northwind-traders.example rcpt=" + recipient + " client=" + outside + " duration="
			if line := d.logLine(t, id); !hasFields(line, want) {
				t.Errorf("log line %q, want it to start %q", line, want)
			}
			const reason = "forged sender: acme-corp.example used from outside"
			out, code = pf.swaks(t, send{from: "bounce@lure-mailer.example", msg: forged, client: outside})
			if got := refusal(out); code != 26 || got != "550 5.7.1 "+reason {
				t.Errorf("forged From: swaks exit %d, refusal %q; transcript:\n%s", code, got, out)
			}
			out, code = pf.swaks(t, send{from: "ceo@" + domain, msg: legit, client: outside})
			if got := refusal(out); code != 23 || got != "550 5.7.1 "+reason {
				t.Errorf("forged envelope: swaks exit %d, refusal %q; transcript:\n%s", code, got, out)
			}
			out, code = pf.swaks(t, send{from: "ceo@" + domain, msg: forged})
			if code != 0 || queuedID(out) == "" {
				t.Errorf("trusted client: swaks exit %d, transcript:\n%s", code, out)
			}
			log := d.logText(t)
			if n := strings.Count(log, " verdict=reject "); n != 2 {
				t.Errorf("%d refusals logged, want 2:\n%s", n, log)
			}
			if !strings.Contains(log, " verdict=pass stage=mail trusted=network sender=ceo@"+domain+" client=127.0.0.1 ") {
				t.Errorf("no trusted pass logged for 127.0.0.1:\n%s", log)
			}
			checkMetrics(t, metrics, `bfs_milter_messages_total{verdict="reject",reason="`+reason+`"} 2`)
			if log := pf.maillog(t); strings.Contains(log, "warning:") {
				t.Errorf("postfix warned:\n%s", log)
			}
		})
	}
}

// checkMetrics fetches http://addr/metrics and wants a line in it.
func checkMetrics(t testing.TB, addr, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	must(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write([]byte("GET /metrics HTTP/1.0\r\nHost: " + addr + "\r\n\r\n"))
	must(t, err)
	var b bytes.Buffer
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if sc.Text() == want {
			return
		}
		b.WriteString(sc.Text() + "\n")
	}
	t.Errorf("metrics have no line %q:\n%s", want, b.String())
}

// TestChrootOutside shows why the socket lives in the queue directory: with smtpd chrooted
// there (Debian's master.cf), a socket anywhere else, here the daemon's own directory below
// /tmp, cannot be reached. Every message gets 451 4.7.1 and the daemon hears of none.
func TestChrootOutside(t *testing.T) {
	requireTools(t)
	d := startDaemon(t, testRules)
	pf := startPostfix(t, options{milter: d.spec, debian: true})
	out, code := pf.swaks(t, send{from: "sales@northwind-traders.example", msg: legit, client: "127.0.0.2"})
	if got := refusal(out); code != 23 || got != "451 4.7.1 Service unavailable - try again later" {
		t.Errorf("swaks exit %d, refusal %q, want 23 and 451 4.7.1; transcript:\n%s", code, got, out)
	}
	waitFor(t, pf, "warning: connect to Milter service "+d.spec+": No such file or directory")
	if log := d.logText(t); strings.Contains(log, "verdict=") {
		t.Errorf("the daemon judged a message:\n%s", log)
	}
}

// TestUnitFile has systemd itself read the unit (systemd-analyze verify: syntax, known
// settings, executables present), with ExecStart naming the program as make build builds
// it. startUnit runs the unit's commands; this checks that systemd would take them as
// written.
func TestUnitFile(t *testing.T) {
	testenv.RequireTools(t, "systemd-analyze")
	u := readUnit(t)
	b, err := os.ReadFile(u.path)
	must(t, err)
	text := strings.Replace(string(b), "ExecStart="+unitBin+"/", "ExecStart="+testenv.Binaries(t)+"/", 1)
	if text == string(b) {
		t.Fatalf("%s: no ExecStart=%s/...", u.path, unitBin)
	}
	f := filepath.Join(t.TempDir(), filepath.Base(u.path))
	must(t, os.WriteFile(f, []byte(text), 0o644))
	out, err := exec.Command("systemd-analyze", "verify", f).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The directories the daemon writes in are the ones it may write in.
	if len(u.readWrite) != 1 || u.readWrite[0] != unitQueue+"/block-forged-sender" || u.runtime != "block-forged-sender" {
		t.Errorf("ReadWritePaths=%q RuntimeDirectory=%q", u.readWrite, u.runtime)
	}
}
