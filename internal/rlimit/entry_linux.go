//go:build linux && (amd64 || arm64)

package rlimit

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// entry is the program's entry point when linked with -E (entry_linux_*.s). Go never calls
// it; the kernel jumps to it, and it jumps to the runtime's _rt0_*_linux.
func entry()

// What entry reads and writes, before the runtime starts: only package variables that the
// linker initialises (no Go code has run). The layout is the assembly's; keep them in step.
var (
	// resources are the kernel's numbers for [AS] and [Data].
	resources = [2]uint64{syscall.RLIMIT_AS, syscall.RLIMIT_DATA}
	// atExec holds the limits found at exec, as prlimit64(2)'s struct rlimit64 {cur, max}.
	atExec [2][2]uint64
	// needs: entry computes them from needBase and, for Data, the size of the program's
	// writable segment, which counts against RLIMIT_DATA from exec on.
	needs    [2]uint64
	needBase = [2]uint64{needAS, needData}
	// raisedBits has bit i set when entry raised atExec[i]'s soft limit to its hard limit.
	raisedBits uint64
	// ran is 1 once entry ran and read both limits.
	ran uint64

	// marker, as argv[1], makes entry a trampoline (see start).
	marker = "BFS_RLIMIT_EXEC"
	// selfExe is the trampoline: this program, as the kernel knows it.
	selfExe = "/proc/self/exe"

	// The log line of a hard limit too low, in the program's format. entry puts the names and
	// the numbers in between; a value must not need quoting (no '"' or '\\').
	msgHead  = `block-forged-sender: verdict=tempfail exit=51 error="rlimit: the hard limit `
	msgNames = [2]string{"RLIMIT_AS (address space; softlimit -a, -m)", "RLIMIT_DATA (data segment; softlimit -d, -m)"}
	msgIs    = " is "
	msgNeed  = " bytes, the Go runtime needs "
	msgTail  = " to start: raise the hard limit to at least that (the soft limit may stay lower)\"\n"
	// msgBuf and digits are entry's scratch space; scratch holds one struct rlimit64.
	msgBuf  [512]byte
	digits  [24]byte
	scratch [2]uint64
)

// The bases of [Need], measured with `prlimit --as=H:H` and `--data=H:H` on the program
// built without the entry (linux/amd64, Go 1.26): the runtime starts from about 720 MB of
// address space, and a message with a 1 MiB sender field full of addresses, encoded words
// and NULs needs 724 MB; RLIMIT_DATA about 41 MB to start and 52 MB for that message, of
// which 1 MB is the program's own writable segment. Both with room for heap arenas (64 MiB
// of address space each) and another Go release.
const (
	needAS   = 1 << 30
	needData = 64 << 20
)

func entryRan() bool { return ran == 1 }

func need(r Resource) uint64 {
	if !entryRan() {
		return 0
	}
	return needs[r]
}

func original(r Resource) (uint64, bool) {
	if entryRan() {
		return atExec[r][0], raisedBits&(1<<r) != 0
	}
	var l syscall.Rlimit
	if err := syscall.Getrlimit(int(resources[r]), &l); err != nil {
		return Unlimited, false
	}
	return l.Cur, false
}

// start runs cmd through the trampoline when a limit was raised. The trampoline's argv:
//
//	argv[0]  block-forged-sender (rlimit exec)
//	argv[1]  marker
//	argv[2]  soft RLIMIT_AS to set, hex
//	argv[3]  soft RLIMIT_DATA to set, hex
//	argv[4]  descriptor of the error pipe, hex
//	argv[5]  the program to exec (cmd.Path)
//	argv[6:] its argv (cmd.Args)
//
// The entry sets the soft limits, marks the error pipe close-on-exec and execs argv[5] with
// the same environment and descriptors. If anything fails it writes the errno (4 bytes,
// little-endian) to the pipe and exits 127; a successful exec closes the pipe unwritten.
// This is how os/exec itself learns of a failed exec.
//
// Without /proc (a chroot) there is no trampoline: cmd then starts directly, under the raised
// limits, rather than not at all.
func start(cmd *exec.Cmd) error {
	if raisedBits == 0 || !entryRan() || cmd.Path == "" || len(cmd.Args) == 0 {
		return cmd.Start() // nothing to restore; or a Cmd os/exec will refuse
	}
	if _, err := os.Stat(selfExe); err != nil {
		return cmd.Start()
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	path, args, extra := cmd.Path, cmd.Args, cmd.ExtraFiles
	cmd.Path = selfExe
	cmd.Args = append([]string{"block-forged-sender (rlimit exec)", marker,
		strconv.FormatUint(atExec[AS][0], 16), strconv.FormatUint(atExec[Data][0], 16),
		strconv.FormatUint(uint64(3+len(extra)), 16), path}, args...)
	cmd.ExtraFiles = append(extra[:len(extra):len(extra)], w)
	err = cmd.Start()
	w.Close()
	cmd.Path, cmd.Args, cmd.ExtraFiles = path, args, extra
	if err != nil {
		return err
	}
	var b [4]byte
	n, err := io.ReadFull(r, b[:])
	if n == 0 && errors.Is(err, io.EOF) {
		return nil // exec'd: the pipe closed on exec
	}
	cmd.Wait()
	if err != nil {
		return &os.PathError{Op: "fork/exec", Path: path, Err: errors.New("rlimit: the trampoline did not report")}
	}
	return &os.PathError{Op: "fork/exec", Path: path, Err: syscall.Errno(binary.LittleEndian.Uint32(b[:]))}
}
