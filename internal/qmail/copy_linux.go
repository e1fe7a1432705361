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

// splicePipes is [Copy] between two pipes: splice(2), falling back to io.Copy where the
// kernel refuses it.
func splicePipes(dst, src *os.File) (int64, error) {
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
