package testenv

import (
	"slices"
	"strconv"
	"testing"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of ds by the nearest-rank method,
// 0 for none; ds is left as it is.
func Percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100 // ceil(p/100 * n)
	return s[max(rank, 1)-1]
}

// ReportLatencies reports the throughput of the messages whose latencies are lat, sent in
// elapsed, and their median, 90th and 99th percentile in microseconds (msgs/s, p50-µs,
// p90-µs, p99-µs).
func ReportLatencies(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "msgs/s")
	for _, p := range []int{50, 90, 99} {
		b.ReportMetric(float64(Percentile(lat, p).Microseconds()), "p"+strconv.Itoa(p)+"-µs")
	}
}
