package qmail

import (
	"os"
	"syscall"
)

// fdStat returns the status of fd, and ok false when it is closed. Descriptors qmail did
// not set up may be closed or hold anything, so callers check the kind before they wrap fd
// in an *os.File (whose finalizer would close a descriptor that is not ours).
func fdStat(fd int) (st syscall.Stat_t, ok bool) {
	return st, syscall.Fstat(fd, &st) == nil
}

// EnvelopeFD3 returns fd 3 when it is open for reading, as qmail-qfilter leaves it: the
// envelope in qmail-queue form. It returns nil when fd 3 is closed, or holds a directory or
// a descriptor with no file type (an anonymous inode: the Go runtime's own epoll
// descriptor takes a closed fd 3 when a garbage collection starts before main, as under a
// small GOMEMLIMIT).
func EnvelopeFD3() *os.File {
	st, ok := fdStat(3)
	if !ok || st.Mode&syscall.S_IFMT == syscall.S_IFDIR || st.Mode&syscall.S_IFMT == 0 {
		return nil
	}
	fl, err := fcntlGetfl(3)
	if err != nil || fl&syscall.O_ACCMODE == syscall.O_WRONLY {
		return nil
	}
	return os.NewFile(3, "envelope")
}

// CustomErrorPipe returns fd 6 when it is open as a writable pipe, which is how a qmail
// with the custom-error patch (netqmail patch, notqmail, qmailtoaster, sagredo) hands it to
// the queue program; nil otherwise. On an unpatched qmail exit 82 would be a temporary
// failure, so callers fall back to [ExitRejected].
func CustomErrorPipe() *os.File {
	st, ok := fdStat(6)
	if !ok || st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return nil
	}
	fl, err := fcntlGetfl(6)
	if err != nil || fl&syscall.O_ACCMODE == syscall.O_RDONLY {
		return nil
	}
	return os.NewFile(6, "custom-error")
}

func fcntlGetfl(fd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// ClosedAtStart reports whether fd, a standard descriptor (0, 1 or 2), was closed when the
// program started. The Go runtime then opens /dev/null on it read-write, so that reading it
// would see an empty message and writing it would lose the message. A shell's </dev/null
// or >/dev/null opens it read-only or write-only and is not mistaken for it.
func ClosedAtStart(fd int) bool {
	var st, null syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return err == syscall.EBADF
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFCHR || syscall.Stat("/dev/null", &null) != nil || st.Rdev != null.Rdev {
		return false
	}
	fl, err := fcntlGetfl(fd)
	return err == nil && fl&syscall.O_ACCMODE == syscall.O_RDWR
}
