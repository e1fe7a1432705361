package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"block-forged-sender/internal/pgtest"
	"block-forged-sender/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// db is a database of the test's own with the README's table and trigger.
func db(t *testing.T) (*pgtest.Cluster, string) {
	t.Helper()
	pg := pgtest.Start(t)
	name := pg.NewDB(t)
	pg.SQL(t, name, testenv.Snippet(t, "sync-schema"))
	return pg, name
}

// envQuery is the query of the README's environment file for the systemd unit.
func envQuery(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(testenv.Snippet(t, "sync-env"), "\n") {
		if v, ok := strings.CutPrefix(line, "BFS_QUERY="); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatal("no BFS_QUERY in the sync-env snippet")
	return ""
}

func setRows(t *testing.T, pg *pgtest.Cluster, name string, lines ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("BEGIN; DELETE FROM bfs_rules;\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "INSERT INTO bfs_rules (line) VALUES ('%s');\n", strings.ReplaceAll(l, "'", "''"))
	}
	b.WriteString("COMMIT;\n")
	pg.SQL(t, name, b.String())
}

type result struct {
	code           int
	stdout, stderr string
}

// bfs runs the built block-forged-sender (which execs block-forged-sender-sync for sync)
// with exactly env in its environment.
func bfs(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenv.Binaries(t), "block-forged-sender"), args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

var onceLine = regexp.MustCompile(`^block-forged-sender: event=sync did=(\w+) rows=(\d+) entries=(\d+) rules=([0-9a-f]{12}) file=(\S+) duration=\d+\.\d{3}ms\n$`)

// TestSyncCommand: block-forged-sender sync writes the list, prints its one line, does
// nothing the second time, and the per-message program's check then judges by the list.
func TestSyncCommand(t *testing.T) {
	pg, name := db(t)
	setRows(t, pg, name, "@ours.example  forged: ours", "!news@ours.example", "phisher@scam.example  phishing")
	file := filepath.Join(t.TempDir(), "badsenders")
	env := []string{"BFS_DSN=" + pg.DSN(name)}
	res := bfs(t, env, "sync", "--query", envQuery(t), file)
	m := onceLine.FindStringSubmatch(res.stdout)
	if res.code != 0 || m == nil || m[1] != "created" || m[2] != "3" || m[3] != "3" || m[5] != file || res.stderr != "" {
		t.Fatalf("sync: exit %d\nstdout %q\nstderr %q\nwant exit 0 and one line: created, 3 rows, 3 entries", res.code, res.stdout, res.stderr)
	}
	version := m[4]

	// Again, with the DSN as a URL and the query from the environment: nothing to do.
	res = bfs(t, []string{"BFS_DSN=" + pg.URL(name), "BFS_QUERY=" + envQuery(t)}, "sync", file)
	if m := onceLine.FindStringSubmatch(res.stdout); res.code != 0 || m == nil || m[1] != "unchanged" || m[4] != version {
		t.Errorf("second sync: exit %d, %q; want unchanged, rules=%s", res.code, res.stdout, version)
	}

	// Another target of the same database, elsewhere under another name, a second later:
	// the same rules version.
	time.Sleep(1100 * time.Millisecond)
	other := filepath.Join(t.TempDir(), "mx2-badsenders")
	res = bfs(t, env, "sync", "--query", envQuery(t), other)
	if m := onceLine.FindStringSubmatch(res.stdout); res.code != 0 || m == nil || m[1] != "created" || m[4] != version {
		t.Errorf("second target: exit %d, %q; want created, rules=%s", res.code, res.stdout, version)
	}

	// The per-message program uses the synced list.
	res = bfs(t, nil, "check", "--rules", file, "--sender", "ceo@ours.example")
	if res.code != 1 || !strings.Contains(res.stdout, file+":1") || !strings.Contains(res.stdout, "forged: ours") {
		t.Errorf("check ceo@ours.example: exit %d\n%s%s\nwant 1 (rejected) by %s:1", res.code, res.stdout, res.stderr, file)
	}
	if res := bfs(t, nil, "check", "--rules", file, "--sender", "news@ours.example"); res.code != 0 {
		t.Errorf("check news@ours.example (an exception): exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// A bad row: exit 111, the row named on stderr, the list kept.
	setRows(t, pg, name, "@ours.example", "@bad..example")
	before, _ := os.ReadFile(file)
	res = bfs(t, env, "sync", "--query", envQuery(t), file)
	if res.code != 111 || res.stdout != "" || !strings.Contains(res.stderr, `did=kept rows=2 entries=0 rules=`+version) || !strings.Contains(res.stderr, `error="pgsync: row 2: `) || !strings.Contains(res.stderr, `@bad..example`) {
		t.Errorf("bad row: exit %d\nstdout %q\nstderr %q\nwant 111, kept, row 2 named", res.code, res.stdout, res.stderr)
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Error("a bad row replaced the list")
	}
	// An empty table: kept, unless --allow-empty.
	setRows(t, pg, name)
	res = bfs(t, env, "sync", "--query", envQuery(t), file)
	if res.code != 111 || !strings.Contains(res.stderr, "--allow-empty") {
		t.Errorf("empty: exit %d, %q; want 111 and a word about --allow-empty", res.code, res.stderr)
	}
	res = bfs(t, append(env, "BFS_ALLOWEMPTY="), "sync", "--query", envQuery(t), file)
	if m := onceLine.FindStringSubmatch(res.stdout); res.code != 0 || m == nil || m[1] != "replaced" || m[3] != "0" {
		t.Errorf("empty with BFS_ALLOWEMPTY: exit %d, %q %q", res.code, res.stdout, res.stderr)
	}
	// A database that is not there.
	res = bfs(t, []string{"BFS_DSN=host=" + t.TempDir() + " dbname=x user=postgres connect_timeout=5"}, "sync", "--query", "SELECT 1", file)
	if res.code != 111 || !strings.Contains(res.stderr, "did=kept") {
		t.Errorf("no database: exit %d, %q", res.code, res.stderr)
	}
}

// TestSyncUsage: usage errors are exit 2 with one line that says what is wrong.
func TestSyncUsage(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"sync", "--query", "SELECT 1", "f"}, "--dsn (BFS_DSN) is required"},
		{[]string{"BFS_DSN=host=/x"}, []string{"sync", "f"}, "--query (BFS_QUERY) is required"},
		{[]string{"BFS_DSN=host=/x", "BFS_QUERY=SELECT 1"}, []string{"sync"}, "which rules file?"},
		{[]string{"BFS_DSN=host=/x", "BFS_QUERY=SELECT 1"}, []string{"sync", "a", "b"}, "one RULESFILE, please"},
		{[]string{"BFS_DSN=host=/x", "BFS_QUERY=SELECT 1"}, []string{"sync", "f.cdb"}, "name the text"},
		{[]string{"BFS_DSN=host=/x", "BFS_QUERY=SELECT 1", "BFS_INTERVAL=soon"}, []string{"sync", "f"}, `BFS_INTERVAL="soon": not a duration`},
		{[]string{"BFS_DSN=postgresql://[::1", "BFS_QUERY=SELECT 1"}, []string{"sync", "f"}, "--dsn: "},
		{[]string{"BFS_DSN=host=/x", "BFS_QUERY=SELECT 1"}, []string{"sync", "--bogus", "f"}, "unknown flag --bogus"},
	} {
		res := bfs(t, tc.env, tc.args...)
		if res.code != 2 || !strings.HasPrefix(res.stderr, "block-forged-sender sync: ") || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want 2 and %q", tc.env, tc.args, res.code, res.stderr, tc.want)
		}
	}
	res := bfs(t, nil, "help", "sync")
	if res.code != 0 || !strings.Contains(res.stdout, "--listen-dsn DSN, BFS_LISTENDSN") {
		t.Errorf("help sync: exit %d, %q", res.code, res.stdout)
	}
}

// lines collects a process's stderr, line by line.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.l[n:]...)
}

func (l *lines) wait(t *testing.T, n int, d time.Duration, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var found string
	if _, ok := pgtest.WaitFor(d, func() bool {
		for _, s := range l.since(n) {
			if rx.MatchString(s) {
				found = s
				return true
			}
		}
		return false
	}); !ok {
		t.Fatalf("no log line matching %s within %v:\n%s", re, d, strings.Join(l.since(0), "\n"))
	}
	return found
}

// TestWatchCommand: sync --watch as the unit runs it (every setting from the environment):
// it logs its start and first sync, has a NOTIFY's change in the files within 2 seconds,
// the filter judges by it, every line carries the rules version, and SIGTERM ends it with
// exit 0.
func TestWatchCommand(t *testing.T) {
	pg, name := db(t)
	setRows(t, pg, name, "@ours.example  forged: ours")
	file := filepath.Join(t.TempDir(), "badsenders")
	cmd := exec.Command(filepath.Join(testenv.Binaries(t), "block-forged-sender"), "sync", "--watch")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "BFS_DSN=" + pg.DSN(name), "BFS_QUERY=" + envQuery(t), "BFS_RULES=" + file, "BFS_INTERVAL=1h"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log lines
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.mu.Lock()
			log.l = append(log.l, sc.Text())
			log.mu.Unlock()
		}
	}()
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	log.wait(t, 0, 10*time.Second, `^block-forged-sender: event=start file=`+regexp.QuoteMeta(file)+` database=postgres@\S+/`+name+` listen=\S+ channel=block_forged_sender interval=1h0m0s version=\S+ rules=none$`)
	first := log.wait(t, 0, 10*time.Second, `^block-forged-sender: event=sync trigger=start did=created rows=1 entries=1 rules=[0-9a-f]{12} `)

	n := len(log.since(0))
	setRows(t, pg, name, "@ours.example  forged: ours", "@partner.example  forged: partner")
	start := time.Now()
	line := log.wait(t, n, 2*time.Second, `^block-forged-sender: event=sync trigger=notify did=replaced rows=2 entries=2 rules=[0-9a-f]{12} `)
	t.Logf("NOTIFY to replaced files, seen in the log: %v", time.Since(start))
	if line[strings.Index(line, "rules="):][:18] == first[strings.Index(first, "rules="):][:18] {
		t.Errorf("the version did not change: %s / %s", first, line)
	}
	if res := bfs(t, nil, "check", "--rules", file, "--sender", "x@partner.example"); res.code != 1 {
		t.Errorf("check after the NOTIFY: exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	<-done
	err = cmd.Wait()
	exited = true
	if err != nil {
		t.Errorf("after SIGTERM: %v, want exit 0", err)
	}
	all := log.since(0)
	if last := all[len(all)-1]; !regexp.MustCompile(`^block-forged-sender: event=shutdown signal=terminated rules=[0-9a-f]{12}$`).MatchString(last) {
		t.Errorf("last line %q, want the shutdown", last)
	}
	for _, l := range all {
		if !strings.Contains(l, " rules=") {
			t.Errorf("a line without the rules version: %s", l)
		}
	}
}

// TestUnit: the systemd unit runs sync --watch with its settings from the environment file
// of the README, and make install puts it, with the PREFIX's path, beside the programs.
func TestUnit(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join(testenv.Root(), "contrib", "block-forged-sender-sync.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nExecStart=/usr/local/bin/block-forged-sender sync --watch\n", "\nEnvironmentFile=/etc/block-forged-sender/sync.env\n", "\nRestart=on-failure\n"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit has no line %q", strings.TrimSpace(want))
		}
	}
	help := bfs(t, nil, "sync", "--help").stdout
	for _, line := range strings.Split(strings.TrimSpace(testenv.Snippet(t, "sync-env")), "\n") {
		name, _, ok := strings.Cut(line, "=")
		if !ok || !strings.Contains(help, ", "+name+"\n") {
			t.Errorf("sync-env line %q is no setting of sync --help", line)
		}
	}
	testenv.RequireTools(t, "make")
	prefix := t.TempDir()
	dest := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "-s", "-C", testenv.Root(), "install", "PREFIX="+prefix, "DESTDIR="+dest, "BINDIR="+t.TempDir())
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	installed, err := os.ReadFile(dest + prefix + "/lib/systemd/system/block-forged-sender-sync.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(installed), "\nExecStart="+prefix+"/bin/block-forged-sender sync --watch\n") {
		t.Errorf("installed unit's ExecStart is not below PREFIX %s:\n%s", prefix, installed)
	}
	for _, p := range []string{"block-forged-sender", "block-forged-sender-sync", "block-forged-sender-milter"} {
		if _, err := os.Stat(dest + prefix + "/bin/" + p); err != nil {
			t.Errorf("make install: %v", err)
		}
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		// verify checks that ExecStart's program exists: point it at the installed one.
		u := filepath.Join(t.TempDir(), "block-forged-sender-sync.service")
		os.WriteFile(u, bytes.ReplaceAll(installed, []byte(prefix+"/bin/"), []byte(dest+prefix+"/bin/")), 0o644)
		if out, err := exec.Command(sa, "verify", u).CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
}
