//go:build linux && (amd64 || arm64)

package rlimit_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"block-forged-sender/internal/rlimit"
	"block-forged-sender/internal/testenv"
)

// EntryFlag is the linker flag the Makefile gives the programs.
const entryFlag = "-ldflags=-E=block-forged-sender/internal/rlimit.entry"

var (
	buildOnce sync.Once
	limitsBin string
	buildErr  error
)

// limitsProgram builds testdata/limits with the entry, once.
func limitsProgram(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bfs-rlimit-")
		if err != nil {
			buildErr = err
			return
		}
		limitsBin = filepath.Join(dir, "limits")
		cmd := exec.Command("go", "build", "-trimpath", entryFlag, "-o", limitsBin, "./testdata/limits")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return limitsBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if limitsBin != "" {
		os.RemoveAll(filepath.Dir(limitsBin))
	}
	os.Exit(code)
}

// run runs the limits program under `prlimit LIMITS...` (none: as it is) and returns its
// exit code, stdout and stderr.
func run(t *testing.T, limits []string, args ...string) (int, string, string) {
	t.Helper()
	argv := append([]string{"prlimit"}, limits...)
	argv = append(argv, limitsProgram(t))
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("%q: killed by %v; stderr: %s", argv, ws.Signal(), stderr.Bytes())
		}
	case err != nil:
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func current(t *testing.T, res int) uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(res, &l); err != nil {
		t.Fatal(err)
	}
	return l.Cur
}

// needData is what the entry of the limits program requires of RLIMIT_DATA.
func needData(t *testing.T) uint64 {
	t.Helper()
	_, out, _ := run(t, nil, "limits")
	m := regexp.MustCompile(`needdata=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no needdata in %q", out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// TestEntry runs the program under soft and hard limits and checks what the entry did: the
// limits it found and raised, and the one log line and exit 51 where a hard limit is too low.
func TestEntry(t *testing.T) {
	testenv.RequireTools(t, "prlimit")
	nd := needData(t)
	if nd < 64<<20 || nd > 96<<20 {
		t.Fatalf("Need(Data) = %d: want 64 MiB and the program's writable segment", nd)
	}
	as, data := current(t, syscall.RLIMIT_AS), current(t, syscall.RLIMIT_DATA)
	needs := fmt.Sprintf("needas=%d needdata=%d", 1<<30, nd)
	tooLow := func(limit string, hard, need uint64) string {
		return fmt.Sprintf(`block-forged-sender: verdict=tempfail exit=51 error="rlimit: the hard limit %s is %d bytes, the Go runtime needs %d to start: raise the hard limit to at least that (the soft limit may stay lower)"`+"\n", limit, hard, need)
	}
	asName, dataName := "RLIMIT_AS (address space; softlimit -a, -m)", "RLIMIT_DATA (data segment; softlimit -d, -m)"
	tests := []struct {
		name   string
		limits []string
		code   int
		stdout string
		stderr string
	}{
		{"no limits", nil, 0, fmt.Sprintf("entry=true as=%d/false data=%d/false budget=%d/%v %s\n", as, data, min(as, data), min(as, data) != rlimit.Unlimited, needs), ""},
		{"softlimit -m 15000000", []string{"--as=15000000:unlimited", "--data=15000000:unlimited"}, 0,
			"entry=true as=15000000/true data=15000000/true budget=15000000/true " + needs + "\n", ""},
		{"soft limits above the need stay", []string{"--as=2000000000:unlimited", "--data=200000000:unlimited"}, 0,
			"entry=true as=2000000000/false data=200000000/false budget=200000000/true " + needs + "\n", ""},
		{"only the data segment limited", []string{"--data=30000000:unlimited"}, 0,
			fmt.Sprintf("entry=true as=%d/false data=30000000/true budget=30000000/true %s\n", as, needs), ""},
		{"hard limits exactly the need", []string{"--as=15000000:1073741824", fmt.Sprintf("--data=15000000:%d", nd)}, 0,
			"entry=true as=15000000/true data=15000000/true budget=15000000/true " + needs + "\n", ""},
		{"hard RLIMIT_AS too low", []string{"--as=500000000:500000000"}, 51, "", tooLow(asName, 500000000, 1<<30)},
		{"hard RLIMIT_AS one byte too low", []string{"--as=15000000:1073741823"}, 51, "", tooLow(asName, 1073741823, 1<<30)},
		{"hard RLIMIT_DATA too low", []string{"--data=50000000:50000000"}, 51, "", tooLow(dataName, 50000000, nd)},
		{"hard RLIMIT_DATA one byte too low", []string{fmt.Sprintf("--data=15000000:%d", nd-1)}, 51, "", tooLow(dataName, nd-1, nd)},
		{"both too low: one line, for the first", []string{"--as=500000000:500000000", "--data=50000000:50000000"}, 51, "", tooLow(asName, 500000000, 1<<30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.limits, "limits")
			if code != tt.code || stdout != tt.stdout || stderr != tt.stderr {
				t.Errorf("exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q", code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// procLimits reads the soft and hard limits of a /proc/PID/limits text.
func procLimits(t *testing.T, text, name string) string {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, name) {
			return strings.Join(strings.Fields(line[len(name):])[:2], " ")
		}
	}
	t.Fatalf("no %q in %q", name, text)
	return ""
}

// TestStart: a program started with [rlimit.Start] runs under the limits the program was
// started with, without the trampoline's error pipe, and a failed exec is
// reported as os/exec reports it, with the entry's trampoline as without it.
func TestStart(t *testing.T) {
	testenv.RequireTools(t, "prlimit")
	softlimit := []string{"--as=15000000:unlimited", "--data=15000000:unlimited", "--stack=15000000:unlimited"}

	t.Run("the original limits", func(t *testing.T) {
		code, out, stderr := run(t, softlimit, "exec", "/bin/sh", "-c", "cat /proc/$$/limits")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for name, want := range map[string]string{"Max address space": "15000000 unlimited", "Max data size": "15000000 unlimited", "Max stack size": "15000000 unlimited"} {
			if got := procLimits(t, out, name); got != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
	})
	t.Run("raised limits of the parent are not the child's", func(t *testing.T) {
		// The parent itself: both raised, as TestEntry shows; its child reads them back.
		code, out, _ := run(t, softlimit, "exec", "/bin/sh", "-c", "cat /proc/$PPID/limits")
		if code != 0 || procLimits(t, out, "Max address space") != "unlimited unlimited" {
			t.Errorf("the parent's limits: exit %d, %q", code, out)
		}
	})
	t.Run("exit code", func(t *testing.T) {
		if code, _, _ := run(t, softlimit, "exec", "/bin/sh", "-c", "exit 7"); code != 7 {
			t.Errorf("exit %d, want 7", code)
		}
	})
	t.Run("the error pipe does not reach the program", func(t *testing.T) {
		code, out, _ := run(t, softlimit, "exec", "/bin/sh", "-c", `if (true >&3) 2>/dev/null; then echo 3 open; fi; echo done`)
		if code != 0 || out != "done\n" {
			t.Errorf("exit %d, %q: the error pipe leaked into the program", code, out)
		}
	})
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, path, err string }{
		{"missing", filepath.Join(dir, "missing"), "no such file or directory"},
		{"not executable", noexec, "permission denied"},
		{"a directory", dir, "permission denied"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := "fork/exec " + tt.path + ": " + tt.err + "\n"
			for _, limits := range [][]string{softlimit, nil} {
				code, _, stderr := run(t, limits, "exec", tt.path)
				if code != 126 || stderr != want {
					t.Errorf("under %q: exit %d, stderr %q; want 126, %q", limits, code, stderr, want)
				}
			}
		})
	}
}
