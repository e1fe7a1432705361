package cdb_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"block-forged-sender/internal/cdb"
)

func benchKey(i int) []byte {
	return fmt.Appendf(nil, "user%d@host%d.example", i, i%1000)
}

// buildBench writes n records (benchKey(i) -> "reason i") to a file in dir.
func buildBench(b *testing.B, dir string, n int) string {
	b.Helper()
	path := dir + "/bench" + strconv.Itoa(n) + ".cdb"
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, err := cdb.NewWriter(f)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		if err := w.Add(benchKey(i), []byte("reason "+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkLookup looks up existing keys in a random order, in databases of
// different sizes.
func BenchmarkLookup(b *testing.B) {
	dir := b.TempDir()
	for _, n := range []int{10, 1000, 100000, 1000000} {
		path := buildBench(b, dir, n)
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			r, err := cdb.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			keys := make([][]byte, 1024)
			for i := range keys {
				keys[i] = benchKey((i * 7919) % n)
			}
			found := 0
			fn := func(v []byte) bool { found++; return false }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := r.Lookup(keys[i%len(keys)], fn); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if found == 0 {
				b.Fatal("no key found")
			}
		})
	}
}

// BenchmarkOpenLookupClose is the per-process cost: open a database, look up one
// key, close it.
func BenchmarkOpenLookupClose(b *testing.B) {
	path := buildBench(b, b.TempDir(), 100000)
	key := benchKey(4242)
	b.ReportAllocs()
	for b.Loop() {
		r, err := cdb.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, found, err := r.Get(key); err != nil || !found {
			b.Fatalf("Get: %v, %v", found, err)
		}
		r.Close()
	}
}

// BenchmarkWrite compiles 1,000,000 records to a file.
func BenchmarkWrite(b *testing.B) {
	const n = 1000000
	keys := make([][]byte, n)
	var size int64
	for i := range keys {
		keys[i] = benchKey(i)
		size += int64(8 + len(keys[i]) + 8 + 16)
	}
	value := []byte("reason 1")
	path := b.TempDir() + "/w.cdb"
	b.SetBytes(size + 2048)
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w, err := cdb.NewWriter(f)
		if err != nil {
			b.Fatal(err)
		}
		for _, k := range keys {
			if err := w.Add(k, value); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Finish(); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
