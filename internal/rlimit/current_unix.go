//go:build unix && !(linux && (amd64 || arm64))

package rlimit

import "syscall"

// current returns the soft limit of r now: with no entry, the one the program started with.
func current(r Resource) uint64 {
	res := syscall.RLIMIT_AS
	if r == Data {
		res = syscall.RLIMIT_DATA
	}
	var l syscall.Rlimit
	if err := syscall.Getrlimit(res, &l); err != nil {
		return Unlimited
	}
	return uint64(l.Cur)
}
