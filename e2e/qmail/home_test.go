// Package qmail runs block-forged-sender where qmail really runs it: behind a real notqmail
// qmail-smtpd started by ucspi-tcp's tcpserver, with a tcprules CDB compiled by the real
// tcprules, as QMAILQUEUE straight (the block-forged-sender-queue link) and under a real
// qmail-qfilter (the README's wrapper script), with and without the memory limit of a
// qmail-smtpd run script (softlimit). A small SMTP client talks to it; the queued messages
// are read back from the queue's mess/ directory (no qmail-send runs).
//
// The tests need root, gcc, make, tcpserver, tcprules and tcprulescheck (Debian's
// ucspi-tcp), softlimit (daemontools), useradd and groupadd, and the notqmail and
// qmail-qfilter sources in ../shared/vendor beside the repository (BFS_VENDOR names another
// directory). Without them they skip, or fail under BFS_REQUIRE_TOOLS=1.
//
// What they change on the machine: once per test process they build notqmail and
// qmail-qfilter into a fresh temporary directory, the private qmail home (conf-qmail
// points there; qmail-queue and qmail-qfilter have its paths compiled in), and remove it
// at the end. notqmail needs its users and groups to exist, and names them in conf-users
// and conf-groups; the tests use names no real qmail installation uses, and create those
// that are missing as system accounts (no home directory, shell /usr/sbin/nologin), which
// are left in place for the next run:
//
//	groups bfstest-qmail, bfstest-nofiles
//	users  bfstest-alias, bfstest-qmaild, bfstest-qmaill, bfstest-qmailp (group bfstest-nofiles)
//	       bfstest-qmailq, bfstest-qmailr, bfstest-qmails (group bfstest-qmail)
//
// Nothing under /var/qmail is read or written: the programs get the private home's paths
// through BFS_RULES, BFS_QMAILQUEUE and BFS_DEFAULTHOST, as an administrator with another
// qmail home would give them. Every tcpserver runs on 127.0.0.1 on a port the kernel
// picks, in its own process group, which each test kills when it ends.
package qmail

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"block-forged-sender/internal/testenv"
)

func TestMain(m *testing.M) {
	code := testenv.Main(m)
	if home.root != "" {
		os.RemoveAll(home.root)
	}
	os.Exit(code)
}

// The tarballs of ../shared/vendor (see its README).
const (
	notqmailTar = "notqmail-a7012e4.tar.gz"
	qfilterTar  = "qmail-qfilter-795718f.tar.gz"
)

// The accounts notqmail runs as (conf-users, conf-groups). The fourth user of conf-users,
// the owner of the binaries, stays root.
var (
	qmailGroups = []string{"bfstest-qmail", "bfstest-nofiles"}
	qmailUsers  = []struct{ name, group string }{
		{"bfstest-alias", "bfstest-nofiles"},
		{"bfstest-qmaild", "bfstest-nofiles"},
		{"bfstest-qmaill", "bfstest-nofiles"},
		{"root", ""},
		{"bfstest-qmailp", "bfstest-nofiles"},
		{"bfstest-qmailq", "bfstest-qmail"},
		{"bfstest-qmailr", "bfstest-qmail"},
		{"bfstest-qmails", "bfstest-qmail"},
	}
)

const (
	smtpUser   = "bfstest-qmaild"  // qmail-smtpd runs as this user (tcpserver -u) ...
	smtpGroup  = "bfstest-nofiles" // ... and group (tcpserver -g)
	hostname   = "mx.acme-corp.example"
	ourDomain  = "acme-corp.example"
	recipient  = "frontoffice@acme-corp.example"
	helloName  = "client.example"
	testReason = "forged sender: acme-corp.example used from outside"
)

// testRules is the badsenders list of every test but the README's own.
const testRules = "@acme-corp.example\t" + testReason + "\n" +
	".acme-corp.example\tforged sender: a subdomain of acme-corp.example used from outside\n"

// qmailHome is the private qmail installation, built once per test process.
type qmailHome struct {
	root    string // everything below: the home, the sources, the test cases
	dir     string // the qmail home (conf-qmail)
	tmp     string // qmail-qfilter's temporary directory (compiled in)
	bin     string // block-forged-sender and its queue link (testenv.Binaries)
	rules   string // testRules, compiled
	uid     int    // smtpUser
	gid     int    // smtpGroup
	seq     int    // numbers the test directories
	mu      sync.Mutex
	build   time.Duration
	missing string // why the tests cannot run here; "" when they can
	err     error  // the build failed
}

var (
	home     qmailHome
	homeOnce sync.Once
)

// needQmail returns the private qmail home, building it on first use, or ends the test
// with testenv.CannotRun when the machine lacks what it needs.
func needQmail(t testing.TB) *qmailHome {
	t.Helper()
	testenv.RequireTools(t, "root", "gcc", "make", "nroff", "tcpserver", "tcprules", "tcprulescheck", "useradd", "groupadd")
	bin := testenv.Binaries(t)
	homeOnce.Do(func() {
		home.bin = bin
		start := time.Now()
		home.err = home.setup()
		home.build = time.Since(start)
		if home.err == nil && home.missing == "" {
			t.Logf("built and installed notqmail and qmail-qfilter in a private qmail home in %s", home.build.Round(time.Second/10))
		}
	})
	if home.missing != "" {
		testenv.CannotRun(t, "%s", home.missing)
	}
	if home.err != nil {
		t.Fatal(home.err)
	}
	return &home
}

// vendorDir is ../shared/vendor beside the repository, or BFS_VENDOR.
func vendorDir() string {
	if d := os.Getenv("BFS_VENDOR"); d != "" {
		return d
	}
	return filepath.Join(testenv.Root(), "..", "shared", "vendor")
}

func (h *qmailHome) setup() error {
	vendor := vendorDir()
	for _, tar := range []string{notqmailTar, qfilterTar} {
		if _, err := os.Stat(filepath.Join(vendor, tar)); err != nil {
			h.missing = fmt.Sprintf("needs %s in %s (BFS_VENDOR names another directory): %v", tar, vendor, err)
			return nil
		}
	}
	if err := createAccounts(); err != nil {
		return err
	}
	var err error
	if h.uid, h.gid, err = ids(smtpUser, smtpGroup); err != nil {
		return err
	}
	// Every account must reach its files below root: the temporary directory is 0700.
	if h.root, err = os.MkdirTemp("", "bfs-qmail-"); err != nil {
		return err
	}
	if err := os.Chmod(h.root, 0o755); err != nil {
		return err
	}
	for d := filepath.Dir(h.root); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("the qmail accounts cannot reach %s: %s is not searchable by others (set TMPDIR)", h.root, d)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	h.dir = filepath.Join(h.root, "qmail")
	h.tmp = filepath.Join(h.root, "tmp")
	src := filepath.Join(h.root, "src")
	for _, d := range []string{src, h.tmp, filepath.Join(h.root, "cases")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(h.tmp, 0o1777); err != nil {
		return err
	}
	for _, tar := range []string{notqmailTar, qfilterTar} {
		if err := run(src, "tar", "xzf", filepath.Join(vendor, tar)); err != nil {
			return err
		}
	}
	if err := h.buildNotqmail(filepath.Join(src, strings.TrimSuffix(notqmailTar, ".tar.gz"))); err != nil {
		return err
	}
	if err := h.buildQfilter(filepath.Join(src, strings.TrimSuffix(qfilterTar, ".tar.gz"))); err != nil {
		return err
	}
	os.RemoveAll(src)
	// example.com is the README's domain (examples/badsenders).
	for name, text := range map[string]string{"me": hostname, "rcpthosts": ourDomain + "\nexample.com"} {
		if err := os.WriteFile(filepath.Join(h.dir, "control", name), []byte(text+"\n"), 0o644); err != nil {
			return err
		}
	}
	h.rules = filepath.Join(h.root, "badsenders")
	if err := os.WriteFile(h.rules, []byte(testRules), 0o644); err != nil {
		return err
	}
	return run(h.root, filepath.Join(h.bin, "block-forged-sender"), "compile", h.rules)
}

// buildNotqmail builds notqmail with its home in h.dir and installs it there (make setup
// check: install, then notqmail's own check of every file's owner and mode).
func (h *qmailHome) buildNotqmail(src string) error {
	var users strings.Builder
	for _, u := range qmailUsers {
		users.WriteString(u.name + "\n")
	}
	conf := map[string]string{
		"conf-qmail":  h.dir + "\n",
		"conf-users":  users.String(),
		"conf-groups": strings.Join(qmailGroups, "\n") + "\n",
	}
	for name, text := range conf {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	// Compiling in parallel is safe; installing and checking are not (check would run
	// before setup has made the home).
	if err := run(src, "make", "-j", "4", "it", "man"); err != nil {
		return err
	}
	return run(src, "make", "setup", "check")
}

// buildQfilter builds qmail-qfilter against an empty bglibs/sysdeps.h (it uses nothing of
// bglibs), with the private qmail-queue and temporary directory compiled in, and installs
// it as h.dir/bin/qmail-qfilter, where the README's wrapper expects it.
func (h *qmailHome) buildQfilter(src string) error {
	inc := filepath.Join(src, "include", "bglibs")
	if err := os.MkdirAll(inc, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(inc, "sysdeps.h"), nil, 0o644); err != nil {
		return err
	}
	out := filepath.Join(h.dir, "bin", "qmail-qfilter")
	if err := run(src, "gcc", "-O2", "-I", filepath.Join(src, "include"),
		fmt.Sprintf("-DQMAIL_QUEUE=%q", filepath.Join(h.dir, "bin", "qmail-queue")),
		fmt.Sprintf("-DTMPDIR=%q", h.tmp),
		"-o", out, "qmail-qfilter.c"); err != nil {
		return err
	}
	return os.Chmod(out, 0o755)
}

// createAccounts creates the groups and users of conf-users and conf-groups that do not
// exist yet. Another test process may be creating them at the same moment: a failure is
// retried, and what counts is that they exist afterwards.
func createAccounts() error {
	for _, g := range qmailGroups {
		if err := ensure(func() bool { _, err := user.LookupGroup(g); return err == nil },
			"groupadd", "--system", g); err != nil {
			return err
		}
	}
	for _, u := range qmailUsers {
		if u.group == "" {
			continue
		}
		if err := ensure(func() bool { _, err := user.Lookup(u.name); return err == nil },
			"useradd", "--system", "--gid", u.group, "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", u.name); err != nil {
			return err
		}
	}
	return nil
}

// ensure runs the command until exists() holds, a few times at most.
func ensure(exists func() bool, name string, args ...string) error {
	var err error
	for try := 0; try < 5; try++ {
		if exists() {
			return nil
		}
		if err = run("", name, args...); err == nil {
			continue
		}
		time.Sleep(200 * time.Millisecond)
	}
	if exists() {
		return nil
	}
	return err
}

func ids(userName, groupName string) (uid, gid int, err error) {
	u, err := user.Lookup(userName)
	if err != nil {
		return 0, 0, err
	}
	g, err := user.LookupGroup(groupName)
	if err != nil {
		return 0, 0, err
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(g.Gid)
	return uid, gid, nil
}

// run runs a command in dir and returns an error with its output when it fails.
func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || len(out) > 0 {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 4000))
		}
		return fmt.Errorf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// newID returns a Message-ID (without brackets) no other message of the process has.
func (h *qmailHome) newID() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	return fmt.Sprintf("msg-%d@northwind-traders.example", h.seq)
}

// caseDir returns a fresh directory for one test below the home's root, readable by
// every account.
func (h *qmailHome) caseDir(t testing.TB) string {
	t.Helper()
	h.mu.Lock()
	h.seq++
	n := h.seq
	h.mu.Unlock()
	dir := filepath.Join(h.root, "cases", strconv.Itoa(n))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
