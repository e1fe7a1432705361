// Package bench is the benchmark suite of block-forged-sender: bench/run measures whole
// processes with hyperfine and /usr/bin/time, and this package holds the Go benchmarks
// that bench/run adds to them (see BENCHMARKS.md). The helper programs are in bench/gen,
// bench/sink, bench/gocat and bench/report.
package bench
