package main

import (
	"sync"
	"testing"
	"time"

	lib "github.com/d--j/go-milter"

	"block-forged-sender/internal/testenv"
)

// BenchmarkMilterDaemon drives the real daemon (the built program, "milter" on a unix
// socket) with many milter connections at once, 16 per GOMAXPROCS, each sending whole
// messages the way Postfix does (connect, MAIL FROM, RCPT, header fields, end of header;
// the connection reused after a reset). It reports messages per second and the latency
// percentiles of one message, from the client's side:
//
//	go test -run '^$' -bench BenchmarkMilterDaemon -benchtime 20000x ./cmd/block-forged-sender
func BenchmarkMilterDaemon(b *testing.B) {
	cases := []struct {
		name string
		msg  milterMsg
		want milterReply
	}{
		{"legitimate", milterMsg{client: "192.0.2.7", queueID: "4Q1", sender: "sales@northwind-traders.example",
			rcpts: []string{"frontoffice@acme-corp.example"}, fields: append(partnerFields("Priya Raman <priya.raman@northwind-traders.example>"),
				[2]string{"Date", " Thu, 03 Oct 2024 18:45:10 +0200"}, [2]string{"Message-ID", " <20241003164510.1@northwind-traders.example>"})},
			accepted},
		{"forged-from", milterMsg{client: "192.0.2.7", queueID: "4Q2", sender: "bounce@lure-mailer.example",
			rcpts: []string{"frontoffice@acme-corp.example"}, fields: partnerFields("=?utf-8?q?Margaret_Okafor?= <m.okafor@acme-corp.example>")},
			milterReply{"eoh", 550, "550 5.7.1 forged sender: acme-corp.example used from outside"}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			d := startMilterDaemon(b, milterRules)
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				bag := lib.NewMacroBag()
				s, err := lib.NewClient("unix", d.socket).Session(bag)
				if err != nil {
					b.Error(err)
					return
				}
				defer s.Close()
				local := make([]time.Duration, 0, 1024)
				for first := true; pb.Next(); first = false {
					if !first {
						if err := s.Reset(bag); err != nil {
							b.Error(err)
							return
						}
					}
					t := time.Now()
					got, err := runMilterMsg(s, bag, bc.msg)
					local = append(local, time.Since(t))
					if err != nil || got != bc.want {
						b.Errorf("reply %+v %v, want %+v", got, err, bc.want)
						return
					}
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			testenv.ReportLatencies(b, lat, elapsed)
		})
	}
}
