package cdb_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"block-forged-sender/internal/cdb"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		recs []record
	}{
		{"empty database", nil},
		{"one record", []record{{"k", "v"}}},
		{"empty key and value", []record{{"", ""}}},
		{"colliding hashes", []record{
			{collide[0], "0"}, {collide[1], "1"}, {collide[2], "2"}, {collide[0], "0b"},
			{collide[3], "3"}, {collide[1], "1b"}, {collide[4], "4"},
		}},
		{"tricky", trickyRecords()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := build(t, tt.recs)
			r, err := cdb.NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			checkReader(t, r, tt.recs)

			r, err = cdb.Open(writeFile(t, data))
			if err != nil {
				t.Fatal(err)
			}
			checkReader(t, r, tt.recs)
			if err := r.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

func TestCollidingKeysCollide(t *testing.T) {
	for _, k := range collide {
		if h := djb(k); h != 0x7c725e7e {
			t.Errorf("djb(%q) = %#x, want 0x7c725e7e", k, h)
		}
	}
}

// TestLayout checks the file layout against values worked out by hand: the key "a"
// hashes to 0x2b5c4 (table 0xc4, 2 slots, start slot 0x2b5 % 2 = 1).
func TestLayout(t *testing.T) {
	data := build(t, []record{{"a", "b"}})
	want := make([]byte, 2048)
	for i := range 256 {
		pos, n := uint32(2048+10), uint32(0)
		if i > 0xc4 {
			pos += 16
		}
		if i == 0xc4 {
			n = 2
		}
		binary.LittleEndian.PutUint32(want[8*i:], pos)
		binary.LittleEndian.PutUint32(want[8*i+4:], n)
	}
	want = append(want, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 'b')
	want = append(want, 0, 0, 0, 0, 0, 0, 0, 0) // slot 0: empty
	want = append(want, 0xc4, 0xb5, 0x02, 0, 0x00, 0x08, 0, 0)
	if !bytes.Equal(data, want) {
		t.Errorf("file = %x\nwant   %x", data, want)
	}
}

// TestReference reads a file made by cdbmake, and checks that our Writer makes
// the same bytes from the same input. It needs no external tools.
func TestReference(t *testing.T) {
	input, err := os.ReadFile("testdata/ref.input")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/ref.cdb")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := parseCdbmakeInput(input)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 10 {
		t.Fatalf("testdata/ref.input has %d records", len(recs))
	}
	r, err := cdb.Open("testdata/ref.cdb")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkReader(t, r, recs)
	if got := build(t, recs); !bytes.Equal(got, want) {
		t.Errorf("Writer output differs from testdata/ref.cdb (%d vs %d bytes)", len(got), len(want))
	}
}

// TestReferenceIsCdbmakes checks that testdata/ref.cdb is what cdbmake makes from
// testdata/ref.input.
func TestReferenceIsCdbmakes(t *testing.T) {
	cdbmake := requireTool(t, "cdbmake")
	input, err := os.ReadFile("testdata/ref.input")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/ref.cdb")
	if err != nil {
		t.Fatal(err)
	}
	if got := runCdbmake(t, cdbmake, input); !bytes.Equal(got, want) {
		t.Errorf("cdbmake output differs from testdata/ref.cdb")
	}
}

func runCdbmake(t *testing.T, cdbmake string, input []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(cdbmake, dir+"/out.cdb", dir+"/out.tmp")
	cmd.Stdin = bytes.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cdbmake: %v: %s", err, out)
	}
	data, err := os.ReadFile(dir + "/out.cdb")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestToolsWrite checks that cdbmake and tinycdb's cdb -c write exactly the bytes
// our Writer writes, and that we read their files.
func TestToolsWrite(t *testing.T) {
	sets := []struct {
		name string
		recs []record
	}{
		{"empty database", nil},
		{"empty key and value", []record{{"", ""}}},
		{"tricky", trickyRecords()},
	}
	tools := []struct {
		name string
		make func(t *testing.T, input []byte) []byte
	}{
		{"cdbmake", func(t *testing.T, input []byte) []byte {
			return runCdbmake(t, requireTool(t, "cdbmake"), input)
		}},
		{"cdb -c", func(t *testing.T, input []byte) []byte {
			tool := requireTool(t, "cdb")
			p := t.TempDir() + "/out.cdb"
			cmd := exec.Command(tool, "-c", p)
			cmd.Stdin = bytes.NewReader(input)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("cdb -c: %v: %s", err, out)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}},
	}
	for _, tool := range tools {
		for _, set := range sets {
			t.Run(tool.name+"/"+set.name, func(t *testing.T) {
				data := tool.make(t, cdbmakeInput(set.recs))
				if ours := build(t, set.recs); !bytes.Equal(data, ours) {
					t.Errorf("%s output (%d bytes) differs from our Writer's (%d bytes)", tool.name, len(data), len(ours))
				}
				r, err := cdb.NewReader(bytes.NewReader(data), int64(len(data)))
				if err != nil {
					t.Fatal(err)
				}
				checkReader(t, r, set.recs)
			})
		}
	}
}

// TestToolsRead checks that cdbdump, cdbget, cdb -d and cdb -q read our files as
// we wrote them.
func TestToolsRead(t *testing.T) {
	recs := trickyRecords()
	path := writeFile(t, build(t, recs))
	input := cdbmakeInput(recs)
	keys, values := byKey(recs)
	// Every key but the generated ones (one in ten is enough), and absent keys.
	var probe []string
	for i, k := range keys {
		if !strings.HasPrefix(k, "user") || i%10 == 0 {
			probe = append(probe, k)
		}
	}
	probe = append(probe, "absent", collide[0]+"x")

	run := func(t *testing.T, stdin bool, name string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(name, args...)
		if stdin {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd.Stdin = f
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("%s %q: %v", name, args, err)
		}
		return string(out), 0
	}

	t.Run("cdbdump", func(t *testing.T) {
		out, code := run(t, true, requireTool(t, "cdbdump"))
		if code != 0 || out != string(input) {
			t.Errorf("cdbdump exit %d, output differs from the input", code)
		}
	})
	t.Run("cdb -d", func(t *testing.T) {
		out, code := run(t, false, requireTool(t, "cdb"), "-d", path)
		if code != 0 || out != string(input) {
			t.Errorf("cdb -d exit %d, output differs from the input", code)
		}
	})
	t.Run("cdbget", func(t *testing.T) {
		cdbget := requireTool(t, "cdbget")
		for _, k := range probe {
			if k == "" || strings.Contains(k, "\x00") {
				continue // cannot be an argument of cdbget
			}
			vs := values[k]
			for skip := 0; skip <= len(vs); skip++ {
				out, code := run(t, true, cdbget, k, strconv.Itoa(skip))
				want, wantCode := "", 100
				if skip < len(vs) {
					want, wantCode = vs[skip], 0
				}
				if out != want || code != wantCode {
					t.Errorf("cdbget %q %d = %.40q, exit %d, want %.40q, exit %d", k, skip, out, code, want, wantCode)
				}
			}
		}
	})
	t.Run("cdb -q", func(t *testing.T) {
		tool := requireTool(t, "cdb")
		for _, k := range probe {
			if strings.Contains(k, "\x00") {
				continue // cannot be an argument
			}
			vs := values[k]
			for n := 1; n <= len(vs)+1; n++ {
				out, code := run(t, false, tool, "-q", "-n", strconv.Itoa(n), path, k)
				want, wantCode := "", 100
				if n <= len(vs) {
					want, wantCode = vs[n-1], 0
				}
				if out != want || code != wantCode {
					t.Errorf("cdb -q -n %d %q = %.40q, exit %d, want %.40q, exit %d", n, k, out, code, want, wantCode)
				}
			}
		}
	})
}

// truncated cuts a valid file at every length and checks that every lookup either
// returns exactly the right values or an error wrapping ErrCorrupt.
func TestTruncated(t *testing.T) {
	recs := []record{{"a", "1"}, {"", ""}, {"a", "2"}, {collide[0], "x"}, {collide[1], "y"}, {"big", strings.Repeat("b", 2000)}}
	data := build(t, recs)
	keys, values := byKey(recs)
	for n := 0; n < len(data); n++ {
		r, err := cdb.NewReader(bytes.NewReader(data[:n]), int64(n))
		if n < 2048 {
			if !errors.Is(err, cdb.ErrCorrupt) {
				t.Fatalf("NewReader of %d bytes: %v, want ErrCorrupt", n, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("NewReader of %d bytes: %v", n, err)
		}
		got, err := forEach(r)
		if err != nil && !errors.Is(err, cdb.ErrCorrupt) {
			t.Fatalf("%d bytes: ForEach: %v, want ErrCorrupt", n, err)
		}
		if err == nil && !slices.Equal(got, recs) {
			t.Fatalf("%d bytes: ForEach = %q without error", n, got)
		}
		for _, k := range keys {
			vs, err := lookup(r, k)
			if err != nil && !errors.Is(err, cdb.ErrCorrupt) {
				t.Fatalf("%d bytes: Lookup(%q): %v, want ErrCorrupt", n, k, err)
			}
			if err == nil && !slices.Equal(vs, values[k]) {
				t.Fatalf("%d bytes: Lookup(%q) = %q without error, want %q", n, k, vs, values[k])
			}
		}
	}
}

// hostile builds a file from a header table and the bytes after the header.
func hostile(tables func(i int) (pos, nslots uint32), rest []byte) []byte {
	data := make([]byte, 2048)
	for i := range 256 {
		pos, n := tables(i)
		binary.LittleEndian.PutUint32(data[8*i:], pos)
		binary.LittleEndian.PutUint32(data[8*i+4:], n)
	}
	return append(data, rest...)
}

func le(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

func TestHostile(t *testing.T) {
	key := "a" // hash 0x2b5c4: table 0xc4, slot 1 of 2
	h := djb(key)
	all := func(pos, n uint32) func(int) (uint32, uint32) {
		return func(int) (uint32, uint32) { return pos, n }
	}
	rec := le(1, 1)
	rec = append(rec, 'b', 'v') // record "b" -> "v" at 2048
	recA := append(le(1, 2), "axy"...)
	full := func(h, pos uint32, n int) []byte {
		var b []byte
		for range n {
			b = append(b, le(h, pos)...)
		}
		return b
	}
	tests := []struct {
		name    string
		data    []byte
		want    []string // Lookup("a") when not corrupt
		corrupt bool     // Lookup("a") gives ErrCorrupt
		scanBad bool     // ForEach gives ErrCorrupt
	}{
		{
			name: "full table of other hashes ends after nslots probes",
			data: hostile(all(2048+10, 100), append(slices.Clone(rec), full(h+1, 2048, 100)...)),
		},
		{
			name: "full table of the same hash, other key",
			data: hostile(all(2048+10, 100), append(slices.Clone(rec), full(h, 2048, 100)...)),
		},
		{
			name: "full table pointing at the key: one value per slot",
			data: hostile(all(2048+11, 3), append(slices.Clone(recA), full(h, 2048, 3)...)),
			want: []string{"xy", "xy", "xy"},
		},
		{
			name:    "slot count past the end of the file",
			data:    hostile(all(2048+10, 0xffffffff), append(slices.Clone(rec), full(h, 2048, 4)...)),
			corrupt: true,
		},
		{
			name:    "table position past the end of the file",
			data:    hostile(all(0xfffffff0, 1), slices.Clone(rec)),
			corrupt: true, scanBad: true,
		},
		{
			name:    "table inside the header",
			data:    hostile(all(8, 2), slices.Clone(rec)),
			corrupt: true, scanBad: true,
		},
		{
			name:    "record position past the end",
			data:    hostile(all(2048+10, 2), append(slices.Clone(rec), le(0, 0, h, 5000)...)),
			corrupt: true,
		},
		{
			name:    "record position in the header",
			data:    hostile(all(2048+10, 2), append(slices.Clone(rec), le(0, 0, h, 100)...)),
			corrupt: true,
		},
		{
			name:    "record 7 bytes before the end",
			data:    hostile(all(2048+10, 2), append(slices.Clone(rec), le(0, 0, h, 2048+10+16-7)...)),
			corrupt: true,
		},
		{
			name:    "huge key length",
			data:    hostile(all(2048+11, 2), append(append(le(0xffffffff, 2), "axy"...), le(0, 0, h, 2048)...)),
			corrupt: true, scanBad: true,
		},
		{
			name:    "huge data length",
			data:    hostile(all(2048+11, 2), append(append(le(1, 0xfffffff0), "axy"...), le(0, 0, h, 2048)...)),
			corrupt: true, scanBad: true,
		},
		{
			name:    "records end past the file",
			data:    hostile(all(4000, 0), slices.Clone(rec)),
			scanBad: true,
		},
		{
			name:    "records end in the middle of a record",
			data:    hostile(all(2048+5, 0), slices.Clone(rec)),
			scanBad: true,
		},
		{
			name:    "records end inside a record header",
			data:    hostile(all(2048+10+4, 0), append(slices.Clone(rec), 0, 0, 0, 0)),
			scanBad: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := cdb.NewReader(bytes.NewReader(tt.data), int64(len(tt.data)))
			if err != nil {
				t.Fatal(err)
			}
			vs, err := lookup(r, key)
			if tt.corrupt {
				if !errors.Is(err, cdb.ErrCorrupt) {
					t.Errorf("Lookup = %q, %v, want ErrCorrupt", vs, err)
				}
			} else if err != nil || !slices.Equal(vs, tt.want) {
				t.Errorf("Lookup = %q, %v, want %q, nil", vs, err, tt.want)
			}
			_, err = forEach(r)
			if tt.scanBad != (err != nil) || (err != nil && !errors.Is(err, cdb.ErrCorrupt)) {
				t.Errorf("ForEach: %v, want ErrCorrupt %v", err, tt.scanBad)
			}
		})
	}
}

func TestLookupStops(t *testing.T) {
	data := build(t, []record{{"k", "1"}, {"k", "2"}, {"k", "3"}})
	r, err := cdb.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = r.Lookup([]byte("k"), func(v []byte) bool {
		got = append(got, string(v))
		return len(got) < 2
	})
	if err != nil || !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("Lookup = %q, %v, want [1 2], nil", got, err)
	}
	stop := errors.New("stop")
	n := 0
	err = r.ForEach(func(k, v []byte) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("ForEach = %v after %d records, want stop after 1", err, n)
	}
}

func TestMisuse(t *testing.T) {
	data := build(t, []record{{"k", "1"}, {"k", "2"}})
	path := writeFile(t, data)
	r, err := cdb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var inner, closeErr error
	err = r.Lookup([]byte("k"), func(v []byte) bool {
		_, inner = lookup(r, "k")
		closeErr = r.Close()
		return true
	})
	if err != nil || inner == nil || closeErr == nil {
		t.Errorf("Lookup inside Lookup: %v, Close inside Lookup: %v, outer %v; want errors, nil", inner, closeErr, err)
	}
	// Lookup inside ForEach is allowed.
	err = r.ForEach(func(k, v []byte) error {
		vs, err := lookup(r, string(k))
		if err != nil || len(vs) != 2 {
			t.Errorf("Lookup(%q) inside ForEach = %q, %v", k, vs, err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("ForEach: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Get([]byte("k")); err == nil {
		t.Error("Get after Close: no error")
	}
	if err := r.ForEach(func(k, v []byte) error { return nil }); err == nil {
		t.Error("ForEach after Close: no error")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := cdb.Open(dir + "/missing.cdb"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
	short := writeFile(t, make([]byte, 2047))
	if _, err := cdb.Open(short); !errors.Is(err, cdb.ErrCorrupt) {
		t.Errorf("Open(2047 bytes) = %v, want ErrCorrupt", err)
	}
}

// TestTruncatedUnderneath truncates a file after Open: a lookup then reports
// ErrCorrupt (an mmap would have died of SIGBUS).
func TestTruncatedUnderneath(t *testing.T) {
	path := writeFile(t, build(t, []record{{"k", "v"}}))
	r, err := cdb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Get([]byte("k")); !errors.Is(err, cdb.ErrCorrupt) {
		t.Errorf("Get after truncation = %v, want ErrCorrupt", err)
	}
}

type failingReaderAt struct{ err error }

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) { return 0, f.err }

func TestReadError(t *testing.T) {
	ioErr := errors.New("disk on fire")
	r, err := cdb.NewReader(failingReaderAt{ioErr}, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Get([]byte("k")); !errors.Is(err, ioErr) || errors.Is(err, cdb.ErrCorrupt) {
		t.Errorf("Get = %v, want the read error, not ErrCorrupt", err)
	}
}

// countingFile discards what is written and remembers the size of the file.
type countingFile struct {
	off, size int64
	seeks     int
}

func (c *countingFile) Write(p []byte) (int, error) {
	c.off += int64(len(p))
	c.size = max(c.size, c.off)
	return len(p), nil
}

func (c *countingFile) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekStart {
		return 0, errors.New("countingFile: only SeekStart")
	}
	c.off = off
	c.seeks++
	return off, nil
}

// TestTooLarge fills a file to exactly 4 GiB - 1 bytes without storing it: a record
// that would go one byte past is refused with ErrTooLarge and nothing is written.
func TestTooLarge(t *testing.T) {
	const limit = 1<<32 - 1
	big := make([]byte, 16<<20)
	var f countingFile
	w, err := cdb.NewWriter(&f)
	if err != nil {
		t.Fatal(err)
	}
	// Each record costs 8 + len(key) + len(value) bytes, and 16 bytes of slots.
	size := int64(2048)
	const cost = 8 + 1 + 16<<20 + 16
	for size+cost <= limit {
		if err := w.Add([]byte("k"), big); err != nil {
			t.Fatalf("Add at size %d: %v", size, err)
		}
		size += cost
	}
	last := limit - size - 8 - 1 - 16 // the value that fills the file exactly
	if err := w.Add([]byte("k"), big[:last+1]); !errors.Is(err, cdb.ErrTooLarge) {
		t.Fatalf("Add of a record one byte too large = %v, want ErrTooLarge", err)
	}
	if err := w.Add([]byte("k"), big[:last]); err != nil {
		t.Fatalf("Add of the record that fills the file: %v", err)
	}
	if err := w.Add(nil, nil); !errors.Is(err, cdb.ErrTooLarge) {
		t.Fatalf("Add of an empty record to a full file = %v, want ErrTooLarge", err)
	}
	if err := w.Finish(); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if f.size != limit || f.seeks != 1 || f.off != 2048 {
		t.Errorf("file size %d, %d seeks, ended at %d; want %d, 1, 2048", f.size, f.seeks, f.off, int64(limit))
	}
}

// failingFile fails every write after the first n bytes.
type failingFile struct {
	n   int
	err error
}

func (f *failingFile) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k := f.n
		f.n = 0
		return k, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

func (f *failingFile) Seek(off int64, whence int) (int64, error) { return off, nil }

func TestWriteError(t *testing.T) {
	ioErr := errors.New("disk full")
	f := &failingFile{n: 3000, err: ioErr}
	w, err := cdb.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2<<20) // larger than the buffer: the write reaches f
	if err := w.Add([]byte("k"), big); !errors.Is(err, ioErr) {
		t.Fatalf("Add = %v, want the write error", err)
	}
	if err := w.Add([]byte("k"), nil); !errors.Is(err, ioErr) {
		t.Errorf("Add after a failed Add = %v, want the write error again", err)
	}
	if err := w.Finish(); !errors.Is(err, ioErr) {
		t.Errorf("Finish after a failed Add = %v, want the write error", err)
	}
}

func TestFinishTwice(t *testing.T) {
	var m memFile
	w, err := cdb.NewWriter(&m)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]byte("k"), nil); err == nil {
		t.Error("Add after Finish: no error")
	}
	if err := w.Finish(); err == nil {
		t.Error("Finish after Finish: no error")
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	recs := trickyRecords()
	r, err := cdb.Open(writeFile(t, build(t, recs)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	keys, _ := byKey(recs)
	n := 0
	fn := func(v []byte) bool { n++; return true }
	lookupAll := func() {
		for _, k := range keys {
			if err := r.Lookup([]byte(k), fn); err != nil {
				t.Fatal(err)
			}
		}
	}
	lookupAll() // grows the buffer to the largest record
	keyBytes := make([][]byte, len(keys))
	for i, k := range keys {
		keyBytes[i] = []byte(k)
	}
	allocs := testing.AllocsPerRun(10, func() {
		for _, k := range keyBytes {
			if err := r.Lookup(k, fn); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 || n == 0 {
		t.Errorf("Lookup of %d keys: %v allocations, want 0", len(keys), allocs)
	}
}
