package bench

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"block-forged-sender/internal/header"
)

// headerHeavy returns a message whose header is about size bytes: folded Received fields,
// then From, Sender and the usual fields, an empty line and a one-line body.
func headerHeavy(size int) string {
	var b strings.Builder
	for i := 0; b.Len() < size-400; i++ {
		fmt.Fprintf(&b, "Received: from relay%d.northwind-traders.example (relay%d.northwind-traders.example [198.51.100.%d])\n"+
			"\tby inbound.acme-corp.example (Postfix) with ESMTPS id 4XK%05dZ\n"+
			"\tfor <frontoffice@acme-corp.example>; Thu, 3 Oct 2024 16:45:11 +0000 (UTC)\n", i, i, i%250, i)
	}
	b.WriteString("From: \"Priya Raman\" <priya.raman@northwind-traders.example>\n" +
		"Sender: accounts@northwind-traders.example\n" +
		"To: Front Office <frontoffice@acme-corp.example>\n" +
		"Subject: Delivery schedule October\n" +
		"\n" +
		"Hi all,\n")
	return b.String()
}

// BenchmarkScanHeader scans the same kind of header at 4 KiB and 1 MiB: bytes/s, and
// allocations per message, which must not grow with the header.
func BenchmarkScanHeader(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"4KiB", 4 << 10}, {"1MiB", 1 << 20}} {
		msg := headerHeavy(size.n)
		b.Run(size.name, func(b *testing.B) {
			r := strings.NewReader(msg)
			froms := 0
			fn := func(f header.Reading) error { froms++; return nil }
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(msg)
				if _, err := header.Scan(r, io.Discard, header.Options{AllSenderFields: true}, fn); err != nil {
					b.Fatal(err)
				}
			}
			if froms == 0 {
				b.Fatal("no sender field reported")
			}
		})
	}
}

// TestHeaderHeavy checks the benchmark's input: its size and that the scanner reports
// its From and Sender fields, and copies it unchanged.
func TestHeaderHeavy(t *testing.T) {
	for _, n := range []int{4 << 10, 1 << 20} {
		msg := headerHeavy(n)
		if len(msg) < n-400 || len(msg) > n+400 {
			t.Errorf("headerHeavy(%d) is %d bytes", n, len(msg))
		}
		var got []string
		var out strings.Builder
		_, err := header.Scan(strings.NewReader(msg), &out, header.Options{AllSenderFields: true}, func(f header.Reading) error {
			got = append(got, f.Name+": "+string(f.Value))
			return nil
		})
		want := []string{`From: "Priya Raman" <priya.raman@northwind-traders.example>`, "Sender: accounts@northwind-traders.example"}
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("Scan(headerHeavy(%d)) = %q, %v; want %q", n, got, err, want)
		}
		if out.String() != msg {
			t.Errorf("Scan(headerHeavy(%d)) changed the message", n)
		}
	}
}
