package rules

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// writeList writes a rules file of n generated entries: user@host, @host and .host in
// turn, each with a reason, and every 100th an exception.
func writeList(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "# generated list of %d entries\n", n)
	for i := range n {
		switch {
		case i%100 == 99:
			fmt.Fprintf(w, "!ok%d@h%d.example rcpt=@ours.example allowed\n", i, i-2)
		case i%3 == 0:
			fmt.Fprintf(w, "User%d@Host%d.example\tbanned address %d\n", i, i, i)
		case i%3 == 1:
			fmt.Fprintf(w, "@h%d.example  banned host\n", i)
		default:
			fmt.Fprintf(w, ".s%d.example  banned subdomains\n", i)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// TestCompileMillion compiles a list of a million entries and checks a few lookups.
func TestCompileMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a 1,000,000-entry list")
	}
	const n = 1_000_000
	src := filepath.Join(t.TempDir(), "badsenders")
	writeList(t, src, n)
	s, info, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !info.Compiled || info.Entries != n {
		t.Errorf("Load = %+v; want %d entries compiled", info, n)
	}
	ours := Scope{Recipients: []string{"a@ours.example"}}
	tests := []struct {
		addr          string
		sc            Scope
		block, except int
	}{
		{"user0@host0.example", Scope{}, 2, 0},
		{"user999996@host999996.example", Scope{}, 999996 + 2, 0},
		{"x@h499996.example", Scope{}, 499997 + 1, 0},
		{"x@a.b.s999998.example", Scope{}, 999999 + 1, 0},
		{"x@s999998.example", Scope{}, 0, 0},
		{"ok999999@h999997.example", ours, 999998 + 1, n + 1},
		{"ok999999@h999997.example", Scope{Recipients: []string{"a@theirs.example"}}, 999998 + 1, 0},
		{"user1@host0.example", Scope{}, 0, 0},
		{"x@h1000001.example", Scope{}, 0, 0},
	}
	for _, tt := range tests {
		m, err := s.Lookup(tt.addr, tt.sc)
		if err != nil || line(m.Block) != tt.block || line(m.Except) != tt.except {
			t.Errorf("Lookup(%q) = block line %d, except line %d, %v; want %d, %d", tt.addr, line(m.Block), line(m.Except), err, tt.block, tt.except)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	src := filepath.Join(dir, "badsenders")
	writeList(b, src, n)
	for b.Loop() {
		if _, err := Compile(src, src+".cdb"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkParse is the cost of reading a list into rules, as Load does when it cannot
// write the CDB.
func BenchmarkParse(b *testing.B) {
	const n = 1_000_000
	src := filepath.Join(b.TempDir(), "badsenders")
	writeList(b, src, n)
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := Parse(f, src, func(Rule) error { return nil }); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// lookupAddrs are the addresses each benchmark iteration looks up: hits of each kind and
// misses with several parent domains (the common case).
var lookupAddrs = []string{
	"user3@host3.example",
	"x@h4.example",
	"x@mail.s5.example",
	"someone@mx.eu.nowhere.example",
	"ceo@ours.example",
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 1000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			src := filepath.Join(b.TempDir(), "badsenders")
			writeList(b, src, n)
			s, _, err := Load(src)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			for b.Loop() {
				for _, a := range lookupAddrs[3:] { // misses
					if _, err := s.Lookup(a, Scope{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2), "ns/lookup")
		})
	}
	b.Run("hit", func(b *testing.B) {
		src := filepath.Join(b.TempDir(), "badsenders")
		writeList(b, src, 1000)
		s, _, err := Load(src)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		b.ReportAllocs()
		for b.Loop() {
			if m, err := s.Lookup("x@h4.example", Scope{}); err != nil || !m.Blocked() {
				b.Fatal(m, err)
			}
		}
	})
}

// BenchmarkLoadLookup is the per-message cost: open a fresh CDB, look up five addresses,
// close.
func BenchmarkLoadLookup(b *testing.B) {
	src := filepath.Join(b.TempDir(), "badsenders")
	writeList(b, src, 100_000)
	if _, err := Compile(src, src+".cdb"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s, _, err := Load(src)
		if err != nil {
			b.Fatal(err)
		}
		for _, a := range lookupAddrs {
			if _, err := s.Lookup(a, Scope{}); err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
	}
}
