// Package testenv is shared by the tests that run this project's programs and real third-party
// components: it builds the programs once per test process exactly as `make build` does,
// reads the snippets the README asks an administrator to paste, and decides whether a missing
// tool skips a test or, under BFS_REQUIRE_TOOLS=1 (CI), fails it. Production code never
// imports it.
package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// CannotRun ends a test that lacks something it needs (a tool, root, a package): a skip, or
// a failure when BFS_REQUIRE_TOOLS=1, so CI cannot go green by skipping.
func CannotRun(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("BFS_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + " (BFS_REQUIRE_TOOLS=1: a missing tool is a failure)")
	}
	t.Skip(msg)
}

// RequireTools ends the test with [CannotRun] unless every named program is in PATH. The
// name "root" stands for running as root.
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if n == "root" {
			if os.Geteuid() != 0 {
				missing = append(missing, "root")
			}
			continue
		}
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		CannotRun(t, "needs: %s", strings.Join(missing, ", "))
	}
}

// Root returns the repository's top directory (the one holding go.mod).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries returns a directory holding the programs as `make build` builds them (the same
// flags, the block-forged-sender-queue link), built once per test process. The directory
// is readable by every user, so tests may run the programs as nobody or qmaild. [Main]
// removes it when the tests end.
func Binaries(t testing.TB) string {
	t.Helper()
	dir, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Build is [Binaries] for a TestMain, before any test runs.
func Build() (string, error) {
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "bfs-testbin-")
		if buildErr != nil {
			return
		}
		if buildErr = os.Chmod(binDir, 0o755); buildErr != nil {
			return
		}
		cmd := exec.Command("make", "--no-print-directory", "-s", "-C", Root(), "build", "BINDIR="+binDir)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("make build: %v\n%s", err, out)
		}
	})
	return binDir, buildErr
}

// Main runs the tests of a package that uses [Binaries] and removes the programs afterwards:
// func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}

// Snippet returns the text of the README block named name: the indented code block that
// follows the line "<!-- snippet NAME -->", with its four-space indentation removed, ending
// in a newline. What the README asks an administrator to paste is thus what a test runs; a
// test fails when the snippet is gone.
func Snippet(t testing.TB, name string) string {
	t.Helper()
	s, err := ReadSnippet(filepath.Join(Root(), "README.md"), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ReadSnippet is [Snippet] for any Markdown file.
func ReadSnippet(file, name string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	marker := "<!-- snippet " + name + " -->"
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	found := false
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		if !found {
			found = strings.TrimSpace(line) == marker
			continue
		}
		if strings.HasPrefix(line, "    ") {
			lines = append(lines, line[4:])
			continue
		}
		if strings.TrimSpace(line) == "" {
			if len(lines) > 0 {
				lines = append(lines, "")
			}
			continue
		}
		break
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if !found {
		return "", fmt.Errorf("%s: no snippet %q (a line %q)", file, name, marker)
	}
	if len(lines) == 0 {
		return "", fmt.Errorf("%s: snippet %q has no indented block after it", file, name)
	}
	return strings.Join(lines, "\n") + "\n", nil
}
