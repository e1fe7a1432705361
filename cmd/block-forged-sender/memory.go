package main

import (
	"fmt"
	"math"

	"block-forged-sender/internal/cli"
)

// Memory limits (internal/rlimit). Under softlimit the entry raised the soft limits for the Go
// runtime to start; the administrator's number still bounds what the program allocates:
// it is the runtime's memory limit, and --max-field is cut to what fits in it.

// memoryBudget is the administrator's memory limit (softlimit -m, -a, -d), 0 for none.
var memoryBudget uint64

// limitMemory sets the runtime's memory limit from the administrator's (cli.LimitMemory)
// and keeps the budget for fieldLimit.
func limitMemory() { memoryBudget = cli.LimitMemory() }

// Handling a sender field of n bytes takes up to about fieldCost*n bytes at once (the
// readings and candidates of internal/address, and the look-ups' bookkeeping), on top of
// baseMemory for the program itself (2.8 MiB of it the program's text, mapped from the
// file). Measured on linux/amd64 with 256 KiB fields of the worst shapes found (dense
// junk addresses, words a domain run joins, encoded words, NULs, right-to-left text):
// peak RSS 4.4 MiB plus 13 to 33 bytes per byte of the field with GOGC=10, up to 43 with
// the default; under softlimit -m 15000000 every one of them stays under 12 MB.
const (
	fieldCost     = 36
	baseMemory    = 4608 << 10
	minFieldLimit = 16 << 10
)

// fieldLimit is maxField (--max-field) cut to what the memory budget allows.
func fieldLimit(maxField int) int {
	if memoryBudget == 0 {
		return maxField
	}
	fit := minFieldLimit
	if memoryBudget > baseMemory+fieldCost*minFieldLimit {
		fit = int(min((memoryBudget-baseMemory)/fieldCost, math.MaxInt32))
	}
	return min(maxField, fit)
}

// fieldLimitNote says why a field limit is not --max-field, for the log line.
func fieldLimitNote(maxField int) string {
	if n := fieldLimit(maxField); n != maxField {
		return fmt.Sprintf(" (--max-field %d, cut to fit the memory limit of %d bytes)", maxField, memoryBudget)
	}
	return ""
}
