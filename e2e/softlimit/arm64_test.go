//go:build linux

package softlimit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"block-forged-sender/internal/testenv"
)

// TestArm64 builds the programs for linux/arm64 as `make build GOARCH=arm64` does and runs
// them under qemu-user: the entry is the ELF entry, the program starts and filters, a hard
// limit too low gives the one line and exit 51, and the trampoline execs (given its argv
// directly: qemu-user keeps the address-space and data limits to itself, so the program
// under it never has limits to raise and restore).
func TestArm64(t *testing.T) {
	testenv.RequireTools(t, "qemu-aarch64", "prlimit")
	dir := t.TempDir()
	build := exec.Command("make", "--no-print-directory", "-s", "-C", testenv.Root(), "build", "BINDIR="+dir, "GOOS=linux", "GOARCH=arm64")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build GOARCH=arm64: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "block-forged-sender")
	checkEntry(t, bin)

	// The wrapper runs the arm64 program under qemu: setup.run puts the program after it.
	s := newSetup(t)
	s.bin = dir
	qemu := []string{"qemu-aarch64"}
	for _, tt := range []struct {
		mode, msg, verdict string
		code               int
	}{
		{"filter", legitMsg, "pass", 0},
		{"filter", forgedMsg, "reject", 31},
		{"queue", legitMsg, "pass", 0},
	} {
		t.Run(tt.mode+"/"+tt.verdict, func(t *testing.T) {
			res := s.run(t, tt.mode, qemu, tt.msg)
			f := logFields(t, res.stderr)
			if res.code != tt.code || f["verdict"] != tt.verdict {
				t.Fatalf("exit %d, log line %q; want %d, verdict=%s", res.code, res.stderr, tt.code, tt.verdict)
			}
			if tt.mode == "queue" {
				if msg, _ := os.ReadFile(filepath.Join(res.rec, "message")); string(msg) != tt.msg {
					t.Errorf("qmail-queue got %q", msg)
				}
			}
		})
	}

	t.Run("hard limit too low", func(t *testing.T) {
		cmd := exec.Command("prlimit", "--as=900000000:900000000", "qemu-aarch64", bin, "version")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		want := `block-forged-sender: verdict=tempfail exit=51 error="rlimit: the hard limit RLIMIT_AS (address space; softlimit -a, -m) is 900000000 bytes, the Go runtime needs 1073741824 to start: raise the hard limit to at least that (the soft limit may stay lower)"` + "\n"
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 51 || stderr.String() != want || stdout.Len() != 0 {
			t.Errorf("%v, stderr %q; want exit 51 and %q", err, stderr.String(), want)
		}
	})

	trampoline := func(t *testing.T, as, path string, args ...string) (code int, stdout string, report []byte) {
		t.Helper()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		argv := append([]string{bin, "BFS_RLIMIT_EXEC", as, "ffffffffffffffff", "3", path}, args...)
		cmd := exec.Command("qemu-aarch64", argv...)
		var out bytes.Buffer
		cmd.Stdout, cmd.ExtraFiles = &out, []*os.File{w}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		report, _ = io.ReadAll(r)
		err = cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				t.Fatalf("killed by %v", ws.Signal())
			}
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), report
	}
	t.Run("trampoline execs", func(t *testing.T) {
		code, out, report := trampoline(t, "ffffffffffffffff", "/bin/sh", "sh", "-c", `echo "$0"; if (true >&3) 2>/dev/null; then echo 3 open; fi`, "ran")
		if code != 0 || out != "ran\n" || len(report) != 0 {
			t.Errorf("exit %d, output %q, report %q; want 0, %q, none", code, out, report, "ran\n")
		}
	})
	t.Run("trampoline reports a failed exec", func(t *testing.T) {
		code, out, report := trampoline(t, "ffffffffffffffff", filepath.Join(dir, "missing"), "missing")
		if code != 127 || out != "" || string(report) != "\x02\x00\x00\x00" {
			t.Errorf("exit %d, output %q, report %q; want 127, none, ENOENT (2)", code, out, report)
		}
	})
	t.Run("trampoline refuses a bad limit", func(t *testing.T) {
		code, out, report := trampoline(t, "10000000000000000", "/bin/true", "true") // 17 digits
		if code != 127 || out != "" || string(report) != "\x16\x00\x00\x00" {
			t.Errorf("exit %d, output %q, report %q; want 127, none, EINVAL (22)", code, out, report)
		}
	})
}
