package cdb_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"

	"block-forged-sender/internal/cdb"
)

// requireTool returns the path of an external program, skipping the test when it is
// missing, or failing it when BFS_REQUIRE_TOOLS=1 (as CI sets it).
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("BFS_REQUIRE_TOOLS") == "1" {
			t.Fatalf("missing tool: %s", name)
		}
		t.Skipf("missing tool: %s", name)
	}
	return p
}

type record struct{ key, value string }

// djb is the cdb hash, written again here as an oracle.
func djb(s string) uint32 {
	h := uint32(5381)
	for i := 0; i < len(s); i++ {
		h = (h * 33) ^ uint32(s[i])
	}
	return h
}

// collide holds keys that all have the djb hash 0x7c725e7e.
var collide = []string{"nbFq", "nbYN", "ncgq", "ncxN", "oBgq", "oBxN", "oCFq", "oCYN"}

// trickyRecords has several values per key, an empty key, empty values, binary
// keys with NUL and 0xff, colliding hashes, a long key, a large value, and enough
// keys to make probe chains cross the slots a Lookup reads at once.
func trickyRecords() []record {
	recs := []record{
		{"dup", "first"},
		{"", "value of the empty key"},
		{"empty", ""},
		{"\x00", "nul"},
		{"a\x00b", "nul inside"},
		{"\xff\xff", "\x00\xff binary value"},
		{"dup", "second"},
		{collide[0], "c0 first"},
		{"\x00\xff", "nul ff"},
	}
	for i, k := range collide {
		recs = append(recs, record{k, "collide " + strconv.Itoa(i)})
	}
	recs = append(recs,
		record{"dup", "third"},
		record{"", ""},
		record{collide[0], "c0 last"},
		record{string(bytes.Repeat([]byte("k"), 1000)), "long key"},
		record{"big", string(bytes.Repeat([]byte("0123456789"), 10000))},
	)
	// Keys in table 0 only: a long table with clusters and wrap-around.
	for i := 0; len(recs) < 600; i++ {
		k := fmt.Sprintf("user%d@host%d.example", i, i%7)
		if djb(k)&255 == 0 || i%10 == 0 {
			recs = append(recs, record{k, "v" + strconv.Itoa(i)})
		}
	}
	return recs
}

// cdbmakeInput returns recs in the input format of cdbmake and cdb -c.
func cdbmakeInput(recs []record) []byte {
	var b bytes.Buffer
	for _, r := range recs {
		fmt.Fprintf(&b, "+%d,%d:%s->%s\n", len(r.key), len(r.value), r.key, r.value)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// parseCdbmakeInput reads the input format of cdbmake.
func parseCdbmakeInput(in []byte) ([]record, error) {
	var recs []record
	for {
		if len(in) == 0 {
			return nil, errors.New("missing final newline")
		}
		if in[0] == '\n' {
			return recs, nil
		}
		var kl, vl int
		n, err := fmt.Sscanf(string(in[:min(len(in), 40)]), "+%d,%d:", &kl, &vl)
		if err != nil || n != 2 {
			return nil, fmt.Errorf("bad record header: %v", err)
		}
		i := bytes.IndexByte(in, ':') + 1
		if len(in) < i+kl+2+vl+1 || string(in[i+kl:i+kl+2]) != "->" || in[i+kl+2+vl] != '\n' {
			return nil, errors.New("bad record")
		}
		recs = append(recs, record{string(in[i : i+kl]), string(in[i+kl+2 : i+kl+2+vl])})
		in = in[i+kl+2+vl+1:]
	}
}

// memFile is an in-memory io.WriteSeeker and io.ReaderAt.
type memFile struct {
	buf []byte
	off int64
}

func (m *memFile) Write(p []byte) (int, error) {
	if end := m.off + int64(len(p)); end > int64(len(m.buf)) {
		m.buf = append(m.buf, make([]byte, end-int64(len(m.buf)))...)
	}
	copy(m.buf[m.off:], p)
	m.off += int64(len(p))
	return len(p), nil
}

func (m *memFile) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekStart {
		return 0, errors.New("memFile: only SeekStart")
	}
	m.off = off
	return off, nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.buf).ReadAt(p, off)
}

// build returns the cdb file our Writer makes from recs.
func build(t testing.TB, recs []record) []byte {
	t.Helper()
	var m memFile
	w, err := cdb.NewWriter(&m)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Add([]byte(r.key), []byte(r.value)); err != nil {
			t.Fatalf("Add(%q): %v", r.key, err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return m.buf
}

func writeFile(t testing.TB, data []byte) string {
	t.Helper()
	p := t.TempDir() + "/f.cdb"
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// forEach returns every record of r in file order.
func forEach(r *cdb.Reader) ([]record, error) {
	var got []record
	err := r.ForEach(func(k, v []byte) error {
		got = append(got, record{string(k), string(v)})
		return nil
	})
	return got, err
}

// lookup returns every value under key.
func lookup(r *cdb.Reader, key string) ([]string, error) {
	var got []string
	err := r.Lookup([]byte(key), func(v []byte) bool {
		got = append(got, string(v))
		return true
	})
	return got, err
}

// byKey groups the values of recs by key, in order.
func byKey(recs []record) (keys []string, values map[string][]string) {
	values = map[string][]string{}
	for _, r := range recs {
		if _, ok := values[r.key]; !ok {
			keys = append(keys, r.key)
		}
		values[r.key] = append(values[r.key], r.value)
	}
	return keys, values
}

// checkReader checks that r holds exactly recs: ForEach in order, and Lookup and
// Get of every key, and of keys that are absent.
func checkReader(t *testing.T, r *cdb.Reader, recs []record) {
	t.Helper()
	got, err := forEach(r)
	if err != nil {
		t.Fatalf("ForEach: %v", err)
	}
	if len(got) != len(recs) {
		t.Fatalf("ForEach gave %d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		if got[i] != recs[i] {
			t.Fatalf("ForEach record %d = %q, want %q", i, got[i], recs[i])
		}
	}
	keys, values := byKey(recs)
	for _, k := range keys {
		vs, err := lookup(r, k)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", k, err)
		}
		if !slices.Equal(vs, values[k]) {
			t.Fatalf("Lookup(%q) = %q, want %q", k, vs, values[k])
		}
		v, found, err := r.Get([]byte(k))
		if err != nil || !found || string(v) != values[k][0] || v == nil {
			t.Fatalf("Get(%q) = %q, %v, %v, want %q, true, nil", k, v, found, err, values[k][0])
		}
	}
	for _, k := range []string{"absent", "dup\x00", "Dup", "nbFr", collide[0] + "x", "\x00\x00"} {
		if _, ok := values[k]; ok {
			continue
		}
		v, found, err := r.Get([]byte(k))
		if err != nil || found || v != nil {
			t.Fatalf("Get(%q) = %q, %v, %v, want nil, false, nil", k, v, found, err)
		}
	}
}
