package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"block-forged-sender/internal/qmail"
	"block-forged-sender/internal/testenv"
)

// binDir holds the programs as make build builds them, for the tests that run them as
// processes, with the queue-mode link beside them.
var binDir string

// fakeQueueEnv makes the test binary act as a recording qmail-queue (see fakeQmailQueue).
const fakeQueueEnv = "BFS_TEST_FAKE_QMAILQUEUE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(fakeQueueEnv); dir != "" {
		os.Exit(fakeQmailQueue(dir))
	}
	dir, err := testenv.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	os.Exit(testenv.Main(m))
}

// fakeQmailQueue stands in for the real qmail-queue: it reads the whole message on fd 0,
// then the envelope on fd 1, and records both in dir. Like qmail-queue it "queues" only
// a complete envelope (file "queued"); otherwise it records what it got in "aborted" and
// exits 54. BFS_TEST_FAKE_EXIT makes it exit with that code after reading the message;
// BFS_TEST_FAKE_EARLY makes it exit with that code before reading anything;
// BFS_TEST_FAKE_SLEEP (a duration) makes it sleep before reading (a hanging qmail-queue);
// BFS_TEST_FAKE_SIGNAL (a number) makes it kill itself with that signal after reading the
// message.
func fakeQmailQueue(dir string) int {
	if code := os.Getenv("BFS_TEST_FAKE_EARLY"); code != "" {
		var n int
		fmt.Sscan(code, &n)
		return n
	}
	if d, err := time.ParseDuration(os.Getenv("BFS_TEST_FAKE_SLEEP")); err == nil {
		time.Sleep(d)
	}
	msg, err := io.ReadAll(os.Stdin)
	if sig := os.Getenv("BFS_TEST_FAKE_SIGNAL"); sig != "" {
		var n int
		fmt.Sscan(sig, &n)
		syscall.Kill(os.Getpid(), syscall.Signal(n)) // SIGKILL or SIGTERM: Go would catch others
		time.Sleep(time.Minute)
	}
	if err != nil {
		return 54
	}
	if code := os.Getenv("BFS_TEST_FAKE_EXIT"); code != "" {
		var n int
		fmt.Sscan(code, &n)
		return n
	}
	env, err := io.ReadAll(os.NewFile(1, "envelope"))
	if err != nil {
		return 54
	}
	if _, err := qmail.ParseEnvelope(env); err != nil {
		os.WriteFile(filepath.Join(dir, "aborted"), append(msg, env...), 0o644)
		return 54
	}
	os.WriteFile(filepath.Join(dir, "message"), msg, 0o644)
	os.WriteFile(filepath.Join(dir, "envelope"), env, 0o644)
	os.WriteFile(filepath.Join(dir, "queued"), nil, 0o644)
	return 0
}

// proc describes one run of the program as a separate process.
type proc struct {
	args  []string          // after the program name
	name  string            // program name; default block-forged-sender
	env   map[string]string // the whole environment, besides PATH
	stdin []byte
	fd3   []byte // envelope on fd 3, nil: closed
	fd6   bool   // give fd 6 as a custom-error pipe
	fd1In []byte // queue mode: fd 1 is a pipe carrying this envelope
}

// result is what a run produced.
type result struct {
	code           int
	stdout, stderr []byte
	fd6            []byte
}

func (p proc) run(t *testing.T) result {
	t.Helper()
	name := p.name
	if name == "" {
		name = "block-forged-sender"
	}
	cmd := exec.Command(filepath.Join(binDir, name), p.args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), hermeticControl(t, p.env)}
	for k, v := range p.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = bytes.NewReader(p.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var closers []io.Closer
	if p.fd1In != nil {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = r
		closers = append(closers, r)
		go func() { w.Write(p.fd1In); w.Close() }()
	}
	extra := make([]*os.File, 4) // fds 3, 4, 5, 6
	if p.fd3 != nil {
		f := writeTemp(t, p.fd3)
		extra[0] = f
		closers = append(closers, f)
	}
	var fd6r *os.File
	if p.fd6 {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		extra[3], fd6r = w, r
		closers = append(closers, w)
	}
	for i := len(extra) - 1; i >= 0 && extra[i] == nil; i-- {
		extra = extra[:i]
	}
	cmd.ExtraFiles = extra
	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range closers {
		c.Close()
	}
	var fd6 []byte
	if fd6r != nil {
		fd6, _ = io.ReadAll(fd6r)
		fd6r.Close()
	}
	err = cmd.Wait()
	res := result{stdout: stdout.Bytes(), stderr: stderr.Bytes(), fd6: fd6}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return res
}

// hermeticControl points the program at an empty qmail control directory unless env names
// one, so no test reads the machine's /var/qmail/control (envnoathost, me).
func hermeticControl(t *testing.T, env map[string]string) string {
	if d, ok := env["BFS_QMAILCONTROL"]; ok {
		return "BFS_QMAILCONTROL=" + d
	}
	return "BFS_QMAILCONTROL=" + t.TempDir()
}

func writeTemp(t *testing.T, b []byte) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "fd")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

// rulesFile writes a rules text into a fresh directory and returns its path.
func rulesFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "badsenders")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// logFields parses the one log line into its key=value fields, values as written.
func logFields(t *testing.T, stderr []byte) map[string]string {
	t.Helper()
	line := strings.TrimSuffix(string(stderr), "\n")
	if strings.Contains(line, "\n") {
		t.Fatalf("want one log line, got %q", stderr)
	}
	if !strings.HasPrefix(line, testenv.LogPrefix) {
		t.Fatalf("log line %q lacks the program prefix", line)
	}
	fields, err := testenv.LogFields(line)
	if err != nil {
		t.Fatal(err)
	}
	return fields
}
