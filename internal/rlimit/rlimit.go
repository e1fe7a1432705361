// Package rlimit lets a Go program run under the memory limits qmail's run scripts set, and
// keeps those limits for the programs it starts.
//
// Every qmail-smtpd run script wraps tcpserver in daemontools' `softlimit -m N` (N is 2 MB in
// Life with qmail, 15 MB in the 2004 setup guide, 180 MB in pkgsrc), which sets the soft
// limits on address space (RLIMIT_AS), data segment (RLIMIT_DATA), stack and locked memory
// for qmail-smtpd and all it runs. The Go runtime cannot start under such limits: before
// main it needs about 720 MB of address space (it reserves 1.2 GB where it can,
// golang/go#38010) and maps a 32 MiB read-write arena index, and dies of SIGSEGV or with a
// trace, so that every message was deferred.
//
// A soft limit may be raised by the process itself up to its hard limit, and softlimit sets
// only soft limits. So the program's entry point (the linker's -E option, see the Makefile)
// is a few instructions of assembly that run before the Go runtime: they record the soft
// and hard limits of RLIMIT_AS and RLIMIT_DATA, raise a soft limit below what the runtime
// needs ([Need]) to its hard limit, and jump to the runtime's own entry. Where the hard limit
// itself is below the need, the runtime would crash, so the entry writes one log line to fd 2
// naming the limit, its value and the value that would work, and exits 51 (qmail-queue(8):
// out of memory; qmail-smtpd answers 451, the sender retries). Lowering the limits again
// once the runtime runs is not possible: the runtime's reservations already exceed them,
// and the kernel then refuses every further mapping, even inside reserved ranges.
//
// The administrator's number still bounds the program: [Budget] is the original limit, which
// the program gives the Go runtime as its memory limit and fits its input buffers to. And the
// programs it starts run under the original limits: [Start] starts them through this
// program's own executable, whose entry sees a marker argument, sets the soft limits back
// to the recorded values and execs the real program, all before any Go code runs, so the
// child never runs a single instruction of its own with the raised limits. (prlimit(2) on
// the child after it started would leave it a moment with the raised ones; os/exec has no
// hook between fork and exec; tracing the child would cost qmail-queue its setuid bit.)
//
// The entry exists for linux/amd64 and linux/arm64. Elsewhere (and in a binary linked
// without -E, such as a test binary) nothing is raised: [Original] reports the current soft
// limits and [Start] is exec.Cmd.Start.
package rlimit

import "os/exec"

// Resource is one of the limits the entry looks after.
type Resource int

const (
	AS   Resource = iota // RLIMIT_AS, address space: softlimit -a, and -m
	Data                 // RLIMIT_DATA, data segment: softlimit -d, and -m
)

func (r Resource) String() string {
	switch r {
	case AS:
		return "RLIMIT_AS"
	case Data:
		return "RLIMIT_DATA"
	}
	return "rlimit.Resource(?)"
}

// Unlimited is RLIM_INFINITY: no limit.
const Unlimited = ^uint64(0)

// ExitTooLow is the exit code of the entry when a hard limit is below [Need]: qmail-queue(8)'s
// "out of memory", a temporary failure.
const ExitTooLow = 51

// Original returns the soft limit of r the program was started with, and whether the entry
// raised it for the Go runtime.
func Original(r Resource) (cur uint64, raised bool) { return original(r) }

// Raised reports whether the entry raised any limit, so that [Start] has limits to restore.
func Raised() bool {
	_, as := Original(AS)
	_, data := Original(Data)
	return as || data
}

// Budget returns the smaller of the original soft limits of RLIMIT_AS and RLIMIT_DATA: the
// memory the administrator allowed the program (softlimit -m sets both). ok is false when
// neither is limited.
func Budget() (bytes uint64, ok bool) {
	as, _ := Original(AS)
	data, _ := Original(Data)
	b := min(as, data)
	return b, b != Unlimited
}

// EntryRan reports whether the program started at the entry of this package, i.e. was
// linked with -ldflags=-E=block-forged-sender/internal/rlimit.entry on a system that has it.
func EntryRan() bool { return entryRan() }

// Need returns what the entry requires of a soft limit before it lets the Go runtime start:
// a smaller soft limit is raised to the hard limit, a smaller hard limit is an exit 51. It is
// 0 where there is no entry.
func Need(r Resource) uint64 { return need(r) }

// Start starts cmd as [exec.Cmd.Start] does, but under the soft limits the program itself
// was started with: when the entry raised a limit, cmd runs through this program's own
// executable (/proc/self/exe), whose entry sets the limits back and execs cmd.Path before
// any Go code runs. A failure to exec cmd.Path is reported by Start as exec.Cmd.Start
// reports it (an *os.PathError "fork/exec PATH"). With nothing raised it is cmd.Start.
func Start(cmd *exec.Cmd) error { return start(cmd) }
