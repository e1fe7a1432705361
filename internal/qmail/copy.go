package qmail

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// spliceChunk is how much one splice(2) moves at most: a pipe holds 64 KiB by default, and
// a larger request simply returns what is there.
const spliceChunk = 1 << 20

// Copy copies the rest of src to dst and returns the number of bytes copied. Between two
// pipes, the way qmail-smtpd feeds qmail-queue, it moves the pages with splice(2) and no copy
// through user space, which Go's io.Copy does not do for pipes; for files io.Copy already
// uses copy_file_range(2). Errors of the splice are *os.SyscallError values, so errors.Is
// finds their errno (EPIPE: the reader went away).
func Copy(dst, src *os.File) (int64, error) {
	if !isPipe(src) || !isPipe(dst) {
		return io.Copy(dst, src)
	}
	// Fd puts both descriptors in blocking mode, which the splice loop needs.
	in, out := int(src.Fd()), int(dst.Fd())
	var n int64
	for {
		m, err := syscall.Splice(in, nil, out, nil, spliceChunk, spliceFlags)
		if m > 0 {
			n += m
			continue
		}
		switch {
		case err == nil:
			return n, nil // end of input
		case errors.Is(err, syscall.EINTR):
			continue
		case n == 0 && (errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS)):
			return io.Copy(dst, src) // no splice here: copy through user space
		case errors.Is(err, syscall.EAGAIN):
			// A descriptor someone set non-blocking: finish the ordinary way.
			m, err := io.Copy(dst, src)
			return n + m, err
		}
		return n, os.NewSyscallError("splice", err)
	}
}

const spliceFlags = 0x1 | 0x4 // SPLICE_F_MOVE | SPLICE_F_MORE

func isPipe(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeNamedPipe != 0
}
