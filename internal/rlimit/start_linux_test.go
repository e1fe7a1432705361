//go:build linux && (amd64 || arm64)

package rlimit

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fakeRaised makes this test binary, which has no entry, look as if the entry had raised
// both limits from as and data, with selfExe replaced; undo restores it all.
func fakeRaised(t *testing.T, as, data uint64, self string) {
	t.Helper()
	oldAt, oldBits, oldRan, oldSelf := atExec, raisedBits, ran, selfExe
	t.Cleanup(func() { atExec, raisedBits, ran, selfExe = oldAt, oldBits, oldRan, oldSelf })
	atExec = [2][2]uint64{{as, Unlimited}, {data, Unlimited}}
	raisedBits, ran, selfExe = 3, 1, self
}

// script writes an executable shell script into dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStartProtocol checks the Go half of the trampoline with a shell script in the
// entry's place: the argv it gets, that nothing raised means no trampoline, and that an
// errno on the pipe becomes the error exec.Cmd.Start would give.
func TestStartProtocol(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "argv")
	tramp := script(t, dir, "tramp", `printf '%s\n' "$@" >"`+rec+`"
case "$5" in */missing) printf '\002\000\000\000' >&3; exit 127;; esac
exit 0
`)

	t.Run("nothing raised: a plain start", func(t *testing.T) {
		os.Remove(rec)
		oldSelf := selfExe
		defer func() { selfExe = oldSelf }()
		selfExe = tramp
		if err := Start(exec.Command("/bin/true")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(rec); err == nil {
			t.Fatal("the trampoline ran though nothing was raised")
		}
	})

	t.Run("raised: the argv", func(t *testing.T) {
		fakeRaised(t, 15000000, 0x10000, tramp)
		cmd := exec.Command("/bin/echo", "a b", "")
		cmd.ExtraFiles = []*os.File{os.Stdin}
		if err := Start(cmd); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(rec)
		want := "BFS_RLIMIT_EXEC\ne4e1c0\n10000\n4\n/bin/echo\n/bin/echo\na b\n\n"
		if string(got) != want {
			t.Errorf("trampoline argv %q, want %q", got, want)
		}
		if cmd.Path != "/bin/echo" || len(cmd.Args) != 3 || len(cmd.ExtraFiles) != 1 {
			t.Errorf("Start left cmd with Path %q, Args %q, %d ExtraFiles", cmd.Path, cmd.Args, len(cmd.ExtraFiles))
		}
	})

	t.Run("raised: a failed exec", func(t *testing.T) {
		fakeRaised(t, 15000000, 15000000, tramp)
		err := Start(exec.Command(filepath.Join(dir, "missing")))
		var pe *os.PathError
		if !errors.As(err, &pe) || pe.Op != "fork/exec" || pe.Path != filepath.Join(dir, "missing") || !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("Start = %v, want fork/exec %s: no such file or directory", err, filepath.Join(dir, "missing"))
		}
	})

	t.Run("raised, no /proc: a plain start", func(t *testing.T) {
		fakeRaised(t, 15000000, 15000000, filepath.Join(dir, "no-proc"))
		os.Remove(rec)
		out, err := startOutput(exec.Command("/bin/echo", "direct"))
		if err != nil || out != "direct\n" {
			t.Fatalf("Start without the trampoline: %q, %v", out, err)
		}
	})
}

func startOutput(cmd *exec.Cmd) (string, error) {
	var b strings.Builder
	cmd.Stdout = &b
	if err := Start(cmd); err != nil {
		return "", err
	}
	err := cmd.Wait()
	return b.String(), err
}
