package address

import (
	"bytes"
	"fmt"
	"testing"
)

// benchValues are a typical From value and large hostile ones. Run with
//
//	go test ./internal/address -run '^$' -bench BenchmarkCandidates -benchmem
func benchValues() []struct {
	name  string
	value []byte
} {
	const k100 = 100 << 10
	rep := func(s string, size int) []byte { return bytes.Repeat([]byte(s), size/len(s)+1)[:size] }
	return []struct {
		name  string
		value []byte
	}{
		{"typical", []byte(`"Priya Raman" <priya.raman@northwind-traders.example>`)},
		{"typical-encoded", []byte(`=?utf-8?Q?Fran=C3=A7ois_Lef=C3=A8vre?= <f.lefevre@northwind-traders.example>`)},
		{"100KB-quoted-display", append(append([]byte(`"`), rep("Office of the CFO ", k100)...), `" <treasury@acme-corp.example>`...)},
		{"100KB-mailboxes", rep("u@x.example, ", k100)},
		{"100KB-distinct", distinct(k100)},
		{"100KB-ats", rep("@", k100)},
		{"100KB-dot-chain", append(rep("a. ", k100), "@b"...)},
		{"100KB-comments", rep("(", k100)},
		{"100KB-brackets", rep("[", k100)},
		{"100KB-encoded", rep("=?utf-8?q?a=40b?= ", k100)},
		{"100KB-unclosed-encoded", rep("=?utf-8?q?", k100)},
		{"100KB-NUL-controls", rep("a@b\x00\x08 ", k100)},
		{"1MB-mailboxes", rep("u@x.example, ", 1<<20)},
		{"1MB-distinct", distinct(1 << 20)},
	}
}

func distinct(size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "u%d@x.example ", i)
	}
	return b.Bytes()
}

func BenchmarkCandidates(b *testing.B) {
	for _, bv := range benchValues() {
		b.Run(bv.name, func(b *testing.B) {
			b.SetBytes(int64(len(bv.value)))
			b.ReportAllocs()
			var dst []Address
			for b.Loop() {
				dst = Candidates(dst[:0], bv.value)
			}
		})
	}
}
