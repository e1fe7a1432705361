package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestGoBenches(t *testing.T) {
	out := `goos: linux
BenchmarkLookup/n=1000-2   	 1000	  985.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkLookup/n=1000-2   	 1000	  1001 ns/op	       0 B/op	       0 allocs/op
BenchmarkLookup/n=1000-2   	 1000	  990.5 ns/op	       0 B/op	       0 allocs/op
BenchmarkScanHeader/4KiB-2 	 2932	  1167 ns/op	3446.04 MB/s	       0 B/op	       0 allocs/op
PASS
`
	got := goBenches(strings.NewReader(out))
	if len(got) != 2 {
		t.Fatalf("goBenches found %d benchmarks, want 2: %v", len(got), got)
	}
	if l := got["BenchmarkLookup/n=1000"]; l["ns/op"] != 990.5 || l["allocs/op"] != 0 {
		t.Errorf("BenchmarkLookup/n=1000 = %v, want ns/op 990.5, allocs/op 0", l)
	}
	if s := got["BenchmarkScanHeader/4KiB"]; s["MB/s"] != 3446.04 {
		t.Errorf("BenchmarkScanHeader/4KiB = %v, want MB/s 3446.04", s)
	}
}

func TestReport(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"perf-1k.json": `{"results":[{"command":"launcher","median":0.0006},{"command":"cat","median":0.0013},` +
			`{"command":"gocat","median":0.0018},{"command":"ours","median":0.0026}]}`,
		"compile.json": `{"results":[{"command":"ours","median":6.0},{"command":"cdbmake","median":3.0}]}`,
		"rss.txt":      "ours-file-1m 6000\nours-file-1g 6100\nours-file-1m 6200\nours-file-1g 6100\n",
		"qmail.txt": "BenchmarkQmailTransaction-2 \t 300\t 5.10 plain-p50-ms\t 6.00 plain-p90-ms\t 3.50 qfilter-cat-added-ms\t 8.60 qfilter-cat-p50-ms\t" +
			" 9.90 qfilter-cat-p90-ms\t 6.20 qfilter-filter-added-ms\t 11.30 qfilter-filter-p50-ms\t 12.00 qfilter-filter-p90-ms\t" +
			" 4.50 queue-added-ms\t 9.60 queue-p50-ms\t 10.50 queue-p90-ms\n",
	}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	report(&b, dir)
	for _, want := range []string{
		"| 1 | filter, 4 KiB message, 1,000 compiled rules | 2.600 ms | cat 1.300 ms | 2.00x | ≤ 1.5x | **no** |",
		"| … net of the `sh -c` launcher (0.600 ms) | 2.000 ms | cat 0.700 ms | 2.86x |",
		"| 5 | compile 10,000,000 rules: ours (text) vs cdbmake (same records) | 6000.000 ms | cdbmake 3000.000 ms | 2.00x | ≤ 1.0x | **no** |",
		"| 3 | peak RSS, file → filter → pipe | 6.0 MiB (1 MiB msg), 6.0 MiB (1 GiB msg) |  | 1.00x | < 12 MiB, ≤ 1.10x | yes |",
		"| 2 | filter, 4 KiB message, 10,000,000 compiled rules | — | — | — | — | not measured (perf-10m.json missing; see the log) |",
		"| 7 | milter messages/s | — | — | — | — | not measured: BenchmarkMilterDaemon failed (see the log) |",
		"| 8 | SMTP transaction through qmail-smtpd, 4 KB message: plain qmail-queue | 5.10 ms (p90 6.00 ms) |  |  |  |  |",
		"| 8 | … queue mode (QMAILQUEUE = block-forged-sender-queue) | 9.60 ms (p90 10.50 ms) | plain 5.10 ms | +4.50 ms | ≤ qmail-qfilter + cat (+3.50 ms) | **no** |",
		"| 8 | … qmail-qfilter + cat | 8.60 ms (p90 9.90 ms) | plain 5.10 ms | +3.50 ms |  |  |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q; got:\n%s", want, b.String())
		}
	}
}
