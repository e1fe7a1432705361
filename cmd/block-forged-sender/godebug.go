// The Go runtime would open cgroup files at start-up to size GOMAXPROCS, and keep them
// open: on fd 3 and fd 4 when qmail left those closed, where they would be taken for
// qmail-qfilter's envelope. A filter that lives a few milliseconds needs neither (and is
// spared the syscalls).

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

package main
