//go:build !linux

package qmail

import (
	"io"
	"os"
)

// splicePipes is [Copy] between two pipes where there is no splice(2): through user space.
func splicePipes(dst, src *os.File) (int64, error) { return io.Copy(dst, src) }
