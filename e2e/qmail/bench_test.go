package qmail

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"block-forged-sender/internal/testenv"
)

// BenchmarkQmailTransaction measures whole SMTP transactions through the real qmail-smtpd
// (connect, EHLO, MAIL, RCPT, DATA of a 4 KB message, QUIT: the client's wall time from
// connect to the reply to QUIT), in four setups, interleaved so that the machine's drift
// falls on all of them alike: plain qmail-queue, the program in queue mode, qmail-qfilter
// running its filter, and qmail-qfilter running cat. Each iteration sends one message
// through each setup, starting with a different one each time; -benchtime 300x gives 300
// transactions per setup. It reports the median and 90th percentile of each, and what each
// adds to plain qmail-queue (median minus median); ns/op is suppressed, as one iteration
// is four transactions. Run it as bench/run does:
//
//	go test -run '^$' -bench '^BenchmarkQmailTransaction$' -benchtime 300x ./e2e/qmail
func BenchmarkQmailTransaction(b *testing.B) {
	h := needQmail(b)
	dir := h.caseDir(b)
	cat := h.wrapper(b, h.caseDir(b), "#!/bin/sh\nexec /var/qmail/bin/qmail-qfilter /bin/cat\n", h.bin)
	setups := []struct {
		name, qmailqueue string
	}{
		{"plain", ""},
		{"queue", filepath.Join(h.bin, "block-forged-sender-queue")},
		{"qfilter-filter", h.wrapper(b, dir, testenv.Snippet(b, "qmail-qfilter-wrapper"), h.bin)},
		{"qfilter-cat", cat},
	}
	servers := make([]*server, len(setups))
	for i, su := range setups {
		rules := ":allow\n"
		if su.qmailqueue != "" {
			rules = `:allow,QMAILQUEUE="` + su.qmailqueue + `"` + "\n"
		}
		servers[i] = h.startServer(b, h.caseDir(b), serverOpts{tcpsmtp: rules})
	}
	m := mail{sender: partner, data: message("Priya Raman <"+partner+">", "bench@northwind-traders.example", 4096)}
	once := func(i int) time.Duration {
		start := time.Now()
		r := servers[i].send(b, "", m, false)
		d := time.Since(start)
		if !strings.HasPrefix(r.reply, "250 ok ") {
			b.Fatalf("%s: reply %q, want 250 ok; log:\n%s", setups[i].name, r.reply, servers[i].logText(b))
		}
		return d
	}
	for i := range setups { // warm-up: page cache, the first exec of each program
		for range 5 {
			once(i)
		}
	}
	times := make([][]time.Duration, len(setups))
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for k := range setups {
			i := (n + k) % len(setups)
			times[i] = append(times[i], once(i))
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	plain := testenv.Percentile(times[0], 50)
	for i, su := range setups {
		p50 := testenv.Percentile(times[i], 50)
		b.ReportMetric(ms(p50), su.name+"-p50-ms")
		b.ReportMetric(ms(testenv.Percentile(times[i], 90)), su.name+"-p90-ms")
		if i > 0 {
			b.ReportMetric(ms(p50-plain), su.name+"-added-ms")
		}
	}
	b.ReportMetric(0, "ns/op")
}
