// Package pgtest runs a private PostgreSQL for the tests that need a real one: Debian's
// postgresql package, a cluster made by initdb in a temporary directory and started by
// pg_ctl, listening on a unix socket in that directory only (no TCP port, nothing shared
// with a system cluster), as the postgres user when the tests run as root. It is started
// once per test process and stopped by [Main]. Production code never imports it.
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"block-forged-sender/internal/testenv"
)

// Bin is where Debian's postgresql package keeps initdb, pg_ctl and postgres; BFS_TEST_PGBIN
// names another directory.
var Bin = "/usr/lib/postgresql/15/bin"

// Cluster is the private server.
type Cluster struct {
	Dir    string // the temporary directory: data/, the socket, the log
	Socket string // the directory of the unix socket (libpq's host=)
	cred   *syscall.Credential
}

var (
	once    sync.Once
	cluster *Cluster
	err     error
)

// Start returns the private server, starting it on first use. A test that cannot have one
// (no postgresql package) ends with [testenv.CannotRun].
func Start(t testing.TB) *Cluster {
	t.Helper()
	once.Do(func() { cluster, err = start() })
	if err != nil {
		testenv.CannotRun(t, "a private PostgreSQL: %v", err)
	}
	return cluster
}

// Main runs the package's tests (with [testenv.Main]) and stops the server afterwards:
// func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }.
func Main(m *testing.M) int {
	code := testenv.Main(m)
	if standby != nil {
		standby.stop()
		os.RemoveAll(standby.Dir)
	}
	if cluster != nil {
		cluster.stop()
		os.RemoveAll(cluster.Dir)
	}
	return code
}

func start() (*Cluster, error) {
	if d := os.Getenv("BFS_TEST_PGBIN"); d != "" {
		Bin = d
	}
	for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(Bin, p)); err != nil {
			return nil, fmt.Errorf("%s not found (apt-get install postgresql): %v", filepath.Join(Bin, p), err)
		}
	}
	sweep()
	dir, err := os.MkdirTemp("", "bfs-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Socket: filepath.Join(dir, "sock")}
	if err := os.Mkdir(c.Socket, 0o755); err != nil {
		return nil, err
	}
	// initdb refuses to run as root: the server runs as postgres, which must own the
	// directory (and reach it: the temporary directory's parent is world-searchable).
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, d := range []string{dir, c.Socket} {
			if err := os.Chown(d, uid, gid); err != nil {
				return nil, err
			}
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions"); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// Unix socket only, in our directory; no durability (a test cluster); enough
	// connections for the tests' syncs, watchers and psql.
	conf := fmt.Sprintf("listen_addresses = ''\nunix_socket_directories = '%s'\nfsync = off\nfull_page_writes = off\nmax_connections = 40\nshared_buffers = 32MB\n", c.Socket)
	f, err := os.OpenFile(filepath.Join(c.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	f.WriteString(conf)
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// ownerFile holds the pid of the test process that made a cluster's directory.
const ownerFile = "owner.pid"

// sweep stops and removes the clusters of test processes that died without stopping them
// (killed by a timeout or a signal before Main's cleanup): directories of ours whose owner
// is gone.
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "bfs-pg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		c := &Cluster{Dir: dir}
		if fi, err := os.Stat(dir); err == nil && os.Geteuid() == 0 {
			st := fi.Sys().(*syscall.Stat_t)
			c.cred = &syscall.Credential{Uid: st.Uid, Gid: st.Gid}
		}
		c.stop()
		os.RemoveAll(dir)
	}
}

// alive reports whether process pid exists and is no zombie (killed, not yet reaped).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // not Linux, or not ours to read: assume it runs
	}
	// pid (comm) state ...: comm may hold blanks and parentheses, so look after the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func (c *Cluster) data() string { return filepath.Join(c.Dir, "data") }

// run runs a program of the postgresql package as the server's user.
func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(Bin, prog), args...)
	cmd.Dir = c.Dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd.CombinedOutput()
}

// Start starts the server (again, after [Cluster.Stop]) and waits until it accepts
// connections.
func (c *Cluster) Start() error {
	out, err := c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.Dir, "log"), "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server at once (pg_ctl -m immediate: every connection is cut), as a
// crash or a lost network would.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if out, err := c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func (c *Cluster) stop() { c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop") }

// DSN returns a libpq connection string for database db, over the unix socket.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=%s sslmode=disable", c.Socket, db)
}

// URL returns the same connection as a postgresql:// URL.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgresql:///%s?host=%s&user=postgres&sslmode=disable", db, c.Socket)
}

var dbSeq struct {
	sync.Mutex
	n int
}

// NewDB creates a database of its own for the test, named after it, and returns its name.
func (c *Cluster) NewDB(t testing.TB) string {
	t.Helper()
	dbSeq.Lock()
	dbSeq.n++
	n := dbSeq.n
	dbSeq.Unlock()
	name := fmt.Sprintf("t%d_%s", n, strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '_'
	}, t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	c.SQL(t, "postgres", "CREATE DATABASE "+name)
	return name
}

// SQL runs statements in database db with psql (stopping at the first error) and returns
// what it printed: unaligned, tuples only.
func (c *Cluster) SQL(t testing.TB, db, sql string) string {
	t.Helper()
	out, err := c.Psql(db, sql)
	if err != nil {
		t.Fatalf("psql %s: %v\n%s\n%s", db, err, sql, out)
	}
	return out
}

// Psql is [Cluster.SQL] returning the error instead of failing the test.
func (c *Cluster) Psql(db, sql string) (string, error) {
	cmd := exec.Command(filepath.Join(Bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", c.Socket, "-U", "postgres", "-d", db, "-f", "-")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "PGCONNECT_TIMEOUT=10"}
	cmd.Stdin = strings.NewReader(sql)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// WaitFor polls cond every 10 ms until it holds or d passes, and says how long it took.
func WaitFor(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Standby makes a streaming replica of the server (pg_basebackup -R: a hot standby that
// follows it) and starts it on a socket of its own. Main stops it with the primary.
func (c *Cluster) Standby(t testing.TB) *Cluster {
	t.Helper()
	standbyOnce.Do(func() { standby, standbyErr = c.newStandby() })
	if standbyErr != nil {
		t.Fatal(standbyErr)
	}
	return standby
}

var (
	standbyOnce sync.Once
	standby     *Cluster
	standbyErr  error
)

func (c *Cluster) newStandby() (*Cluster, error) {
	dir, err := os.MkdirTemp("", "bfs-pg-standby-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	s := &Cluster{Dir: dir, Socket: filepath.Join(dir, "sock"), cred: c.cred}
	if err := os.Mkdir(s.Socket, 0o755); err != nil {
		return nil, err
	}
	if c.cred != nil {
		for _, d := range []string{dir, s.Socket} {
			if err := os.Chown(d, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if out, err := s.run("pg_basebackup", "-h", c.Socket, "-U", "postgres", "-D", s.data(), "-R", "-X", "stream", "-c", "fast"); err != nil {
		return nil, fmt.Errorf("pg_basebackup: %v\n%s", err, out)
	}
	f, err := os.OpenFile(filepath.Join(s.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "unix_socket_directories = '%s'\nhot_standby = on\n", s.Socket)
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}
