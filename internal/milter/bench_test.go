package milter

import (
	"sync"
	"testing"
	"time"

	lib "github.com/d--j/go-milter"

	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/testenv"
)

// BenchmarkServer drives the server with many concurrent milter connections (GOMAXPROCS×
// -cpu parallelism, see b.SetParallelism), each sending whole messages the way Postfix does,
// and reports messages per second and per-message latency percentiles.
func BenchmarkServer(b *testing.B) {
	cfg, _ := config(b, policy.Config{})
	cfg.Metrics = new(Metrics)
	_, addr := startServer(b, cfg)
	msg := message{
		client: "192.0.2.7", host: "mx.northwind-traders.example", sender: "sales@northwind-traders.example",
		rcpts: []string{"frontoffice@acme-corp.example"},
		fields: [][2]string{
			{"Received", " from mx.northwind-traders.example (mx.northwind-traders.example [192.0.2.7])\n\tby mx.acme-corp.example (Postfix) with ESMTP id 4Q1\n\tfor <frontoffice@acme-corp.example>; Fri, 27 Nov 2026 10:00:00 +0000 (UTC)"},
			{"From", " Partner <sales@northwind-traders.example>"},
			{"To", " frontoffice@acme-corp.example"},
			{"Subject", " quarterly figures"},
			{"Date", " Fri, 27 Nov 2026 10:00:00 +0000"},
			{"Message-ID", " <20261127100000.1@northwind-traders.example>"},
		},
	}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(16) // 16 connections per CPU
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		bag := lib.NewMacroBag()
		s, err := lib.NewClient("tcp", addr).Session(bag)
		if err != nil {
			b.Error(err)
			return
		}
		defer s.Close()
		local := make([]time.Duration, 0, 1024)
		first := true
		for pb.Next() {
			if !first {
				if err := s.Reset(bag); err != nil {
					b.Error(err)
					return
				}
			}
			first = false
			t := time.Now()
			a, err := runMessage(s, msg)
			if err != nil || a.code != 250 {
				b.Errorf("message: %+v %v", a, err)
				return
			}
			local = append(local, time.Since(t))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	testenv.ReportLatencies(b, lat, elapsed)
}
