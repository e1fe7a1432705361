package cli

import (
	"math"
	"runtime/debug"

	"block-forged-sender/internal/rlimit"
)

// LimitMemory makes the administrator's memory limit (softlimit -m, -a, -d; see
// internal/rlimit: the entry point raised the soft limits so that the Go runtime could
// start) the runtime's memory limit, less the program's text, unless GOMEMLIMIT already sets
// a lower one. It returns that budget, 0 for none. Every program calls it first; linking
// internal/rlimit is also what gives a program the entry point the Makefile names.
func LimitMemory() uint64 {
	b, ok := rlimit.Budget()
	if !ok {
		return 0
	}
	limit := int64(minMemoryLimit)
	if b > textMemory+minMemoryLimit {
		limit = int64(min(b-textMemory, math.MaxInt64))
	}
	if limit < debug.SetMemoryLimit(-1) {
		debug.SetMemoryLimit(limit)
	}
	return b
}

// The runtime's memory limit counts what the runtime maps, not the program's text, which
// is mapped from the file and resident too (2.8 MiB of it on linux/amd64). Without that
// allowance the peak RSS under softlimit -m 15000000 was up to 17.7 MB on a busy machine.
const (
	textMemory     = 3 << 20
	minMemoryLimit = 1 << 20
)
