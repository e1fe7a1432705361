package qmail

import (
	"io"
	"os"
)

// Copy copies the rest of src to dst and returns the number of bytes copied. Between two
// pipes, the way qmail-smtpd feeds qmail-queue, it moves the pages with splice(2) and no copy
// through user space, which Go's io.Copy does not do for pipes; for files io.Copy already
// uses copy_file_range(2). Errors of the splice are *os.SyscallError values, so errors.Is
// finds their errno (EPIPE: the reader went away).
func Copy(dst, src *os.File) (int64, error) {
	if !isPipe(src) || !isPipe(dst) {
		return io.Copy(dst, src)
	}
	return splicePipes(dst, src)
}

func isPipe(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeNamedPipe != 0
}
