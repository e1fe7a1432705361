package main

import "testing"

func TestFieldLimit(t *testing.T) {
	defer func(b uint64) { memoryBudget = b }(memoryBudget)
	tests := []struct {
		budget   uint64
		maxField int
		want     int
	}{
		{0, 1 << 20, 1 << 20}, // no limit: --max-field as given
		{0, 64 << 20, 64 << 20},
		{180000000, 1 << 20, 1 << 20}, // pkgsrc's softlimit: room enough
		{64000000, 8 << 20, 1646705},  // (64000000 - 4.5 MiB) / 36
		{15000000, 1 << 20, 285594},   // the 2004 guide's softlimit
		{15000000, 4096, 4096},        // a smaller --max-field stays
		{10000000, 1 << 20, 146705},
		{5000000, 1 << 20, minFieldLimit},
		{4800000, 1 << 20, minFieldLimit}, // below that: the floor
		{2000000, 1 << 20, minFieldLimit}, // Life with qmail's (the program cannot even be loaded)
		{1 << 62, 1 << 20, 1 << 20},
		{^uint64(0) - 1, 1 << 30, 1 << 30},
		{^uint64(0) - 1, 1 << 40, 2147483647}, // the cut fits an int32
	}
	for _, tt := range tests {
		memoryBudget = tt.budget
		if got := fieldLimit(tt.maxField); got != tt.want {
			t.Errorf("budget %d: fieldLimit(%d) = %d, want %d", tt.budget, tt.maxField, got, tt.want)
		}
	}
}
