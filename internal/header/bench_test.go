package header

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// benchMessage is a header-heavy message: n Received fields (about 300 bytes each, folded)
// and the usual fields, with the From near the end, then a short body.
func benchMessage(n int, eol string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "Received: from relay%03d.northwind-traders.example (relay%03d.northwind-traders.example [198.51.100.%d])%s"+
			"\tby inbound.acme-corp.example (Postfix) with ESMTPS id 4XK%05dZ for <frontoffice@acme-corp.example>;%s"+
			"\tThu, 3 Oct 2024 16:45:11 +0000 (UTC)%s", i, i, i%250, eol, i, eol, eol)
	}
	for _, l := range []string{
		"Message-ID: <20241003164510.bench@out.northwind-traders.example>",
		"Date: Thu, 03 Oct 2024 18:45:10 +0200",
		"Subject: Delivery schedule October",
		"From: \"Priya Raman\" <priya.raman@northwind-traders.example>",
		"To: Front Office <frontoffice@acme-corp.example>",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=us-ascii",
		"",
		"Hi all,",
	} {
		b.WriteString(l + eol)
	}
	return b.String()
}

// BenchmarkScan measures Scan on a header of 200 Received fields (about 60 KB), read
// from memory and written to io.Discard. BenchmarkCopy is io.Copy of the same bytes: the
// cost of the copy alone, for comparison.
func BenchmarkScan(b *testing.B) {
	for _, eol := range []string{"\n", "\r\n"} {
		msg := benchMessage(200, eol)
		name := map[string]string{"\n": "LF", "\r\n": "CRLF"}[eol]
		b.Run(name, func(b *testing.B) {
			r := strings.NewReader(msg)
			fn := func(Reading) error { return nil }
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(msg)
				if _, err := Scan(r, io.Discard, Options{AllSenderFields: true}, fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("LongFrom", func(b *testing.B) {
		msg := "From: \"" + strings.Repeat("Office of the Chief Financial Officer ", 4500) + "\" <treasury@acme-corp.example>\n\n"
		r := strings.NewReader(msg)
		fn := func(Reading) error { return nil }
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			r.Reset(msg)
			if _, err := Scan(r, io.Discard, Options{}, fn); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCopy(b *testing.B) {
	msg := benchMessage(200, "\n")
	r := strings.NewReader(msg)
	buf := make([]byte, bufSize)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(msg)
		if _, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{r}, buf); err != nil {
			b.Fatal(err)
		}
	}
}
