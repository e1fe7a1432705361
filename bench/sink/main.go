// Command sink stands in for qmail-queue in the benchmarks: it reads the message on fd 0 to
// its end, then the envelope on fd 1 to its end, discards both and exits 0. It does no
// other work, so a measurement of the queue mode is the filter's cost alone.
//
//	sink        drain fd 0, then fd 1 (as qmail-queue reads them)
//	sink FD...  drain the descriptors named, in order (sink 0: a reader at a pipe's end)
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func main() {
	fds := []int{0, 1}
	if len(os.Args) > 1 {
		fds = fds[:0]
		for _, a := range os.Args[1:] {
			fd, err := strconv.Atoi(a)
			if err != nil || fd < 0 {
				fmt.Fprintf(os.Stderr, "sink: %q: not a descriptor\n", a)
				os.Exit(2)
			}
			fds = append(fds, fd)
		}
	}
	buf := make([]byte, 1<<16)
	for _, fd := range fds {
		if err := drain(fd, buf); err != nil {
			fmt.Fprintf(os.Stderr, "sink: fd %d: %v\n", fd, err)
			os.Exit(81)
		}
	}
}

// drain reads fd to its end.
func drain(fd int, buf []byte) error {
	for {
		n, err := syscall.Read(fd, buf)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return err
		case n == 0:
			return nil
		}
	}
}
