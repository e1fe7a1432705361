package rules

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestMain lets the tests run this test binary as a helper process: with
// BFS_RULES_HELPER=load it loads the rules at BFS_RULES_PATH, looks up BFS_RULES_ADDR and
// prints what it found.
//
// No test reads this machine's qmail control files: a :rcpthosts line may read only under
// the temporary directory (a fuzzed or default control directory gets an error).
func TestMain(m *testing.M) {
	tmp := filepath.Clean(os.TempDir()) + string(filepath.Separator)
	testOnlyOpenControl = func(name string) (*os.File, error) {
		if !strings.HasPrefix(name, tmp) {
			return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("the tests read no control file outside " + tmp)}
		}
		return os.Open(name)
	}
	if os.Getenv("BFS_RULES_HELPER") == "load" {
		os.Exit(helperLoad(os.Getenv("BFS_RULES_PATH"), os.Getenv("BFS_RULES_ADDR")))
	}
	os.Exit(m.Run())
}

func helperLoad(path, addr string) int {
	s, info, err := Load(path)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	defer s.Close()
	m, err := s.Lookup(addr, Scope{})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Printf("blocked=%v inmemory=%v stale=%v command=%q\n", m.Blocked(), info.InMemory, info.Stale, info.Command)
	return 0
}

// helperCmd returns a command running the test binary exe as a helper.
func helperCmd(exe, path, addr string) *exec.Cmd {
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "BFS_RULES_HELPER=load", "BFS_RULES_PATH="+path, "BFS_RULES_ADDR="+addr)
	return cmd
}

// TestLoadReadOnlyDir checks the in-memory fallback with a directory the process really
// cannot write to. Permissions do not stop root, so as root the check runs in a child
// process (this test binary, copied where that user can run it) as the user nobody
// (65534), which gets a real EACCES.
func TestLoadReadOnlyDir(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "badsenders")
	writeFile(t, src, "@a.example\n")
	if _, err := Compile(src, src+".cdb"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, "@b.example\n")
	stale(t, src)
	want := fmt.Sprintf("blocked=true inmemory=true stale=true command=%q\n", "block-forged-sender compile "+src)
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o755)
		s, info, err := Load(src)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		m, err := s.Lookup("x@b.example", Scope{})
		got := fmt.Sprintf("blocked=%v inmemory=%v stale=%v command=%q\n", m.Blocked(), info.InMemory, info.Stale, info.Command)
		if err != nil || got != want {
			t.Errorf("Load in a read-only directory: %s, %v; want %s", got, err, want)
		}
		return
	}
	exe := filepath.Join(dir, "rules.test")
	if err := copyFile(exe, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	cmd := helperCmd(exe, src, "x@b.example")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "permission denied") && !strings.HasPrefix(string(out), "error:") {
		t.Skipf("cannot run the test binary as nobody here: %v: %s", err, out)
	}
	if err != nil || string(out) != want {
		t.Errorf("Load as nobody in a read-only directory: %s (%v); want %s", out, err, want)
	}
}

// copyFile copies the running test binary to dst.
func copyFile(dst string, mode os.FileMode) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(exe)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestConcurrentProcesses runs several processes that all find the CDB stale and compile
// it at once; each must get correct rules and the directory must end with one good CDB.
func TestConcurrentProcesses(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "badsenders")
	var text strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&text, "@d%d.example reason %d\n", i, i)
	}
	writeFile(t, src, text.String())
	for round := range 3 {
		if round > 0 {
			stale(t, src)
		}
		var cmds []*exec.Cmd
		var outs []*strings.Builder
		for range 4 {
			cmd := helperCmd(exe, src, "x@d19999.example")
			out := new(strings.Builder)
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, outs = append(cmds, cmd), append(outs, out)
		}
		for i, cmd := range cmds {
			err := cmd.Wait()
			if want := "blocked=true inmemory=false stale=false command=\"\"\n"; err != nil || outs[i].String() != want {
				t.Errorf("round %d process %d: %q, %v; want %q", round, i, outs[i].String(), err, want)
			}
		}
	}
	if names := listDir(t, dir); strings.Join(names, " ") != "badsenders badsenders.cdb" {
		t.Errorf("directory holds %q", names)
	}
	s, info, err := Load(src)
	if err != nil || info.Compiled {
		t.Fatalf("Load after the race = %+v, %v; want the fresh CDB", info, err)
	}
	defer s.Close()
	if m, err := s.Lookup("x@d12345.example", Scope{}); err != nil || !m.Blocked() || m.Block.Reason != "reason 12345" {
		t.Errorf("Lookup = %+v, %v", m, err)
	}
}
