package header

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// got is one reported field, in a comparable form.
type got struct{ Name, Value string }

func (g got) String() string { return fmt.Sprintf("%s: %q", g.Name, g.Value) }

func formatFields(fs []got) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// result is everything one Scan call did.
type result struct {
	fields []got
	out    []byte // what Scan wrote
	rest   []byte // what was left in the reader
	n      int64
	err    error
}

// split names a way of delivering the input to Scan.
type split struct {
	name string
	wrap func(io.Reader) io.Reader
}

// chunkReader returns a random number of bytes, 1 to limit, per Read.
type chunkReader struct {
	r     io.Reader
	rng   *rand.Rand
	limit int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	n := 1 + c.rng.IntN(c.limit)
	if n < len(p) {
		p = p[:n]
	}
	return c.r.Read(p)
}

// fixedReader returns at most size bytes per Read.
type fixedReader struct {
	r    io.Reader
	size int
}

func (f *fixedReader) Read(p []byte) (int, error) {
	if f.size < len(p) {
		p = p[:f.size]
	}
	return f.r.Read(p)
}

func splits() []split {
	s := []split{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"onebyte", iotest.OneByteReader},
		{"halfbuf", iotest.HalfReader},
		{"dataerr", iotest.DataErrReader},
		{"7byte", func(r io.Reader) io.Reader { return &fixedReader{r, 7} }},
	}
	for seed := range uint64(3) {
		s = append(s, split{fmt.Sprintf("random%d", seed), func(r io.Reader) io.Reader {
			return &chunkReader{r, rand.New(rand.NewPCG(seed, 42)), 1 + int(seed)*37}
		}})
	}
	return s
}

// run scans input delivered through wrap.
func run(input []byte, opt Options, wrap func(io.Reader) io.Reader) result {
	src := bytes.NewReader(input)
	var out bytes.Buffer
	var res result
	wr := wrap(src)
	res.n, res.err = Scan(wr, &out, opt, func(f Reading) error {
		res.fields = append(res.fields, got{f.Name, string(f.Value)})
		return nil
	})
	res.out = out.Bytes()
	res.rest, _ = io.ReadAll(wr) // the wrapper may hold bytes read ahead (DataErrReader)
	return res
}

// checkCopy asserts that Scan copied its input exactly: what it wrote, then what it left
// in the reader, is the input, and n is what it wrote.
func checkCopy(t *testing.T, input []byte, res result) {
	t.Helper()
	if res.n != int64(len(res.out)) {
		t.Errorf("n = %d, but %d bytes written", res.n, len(res.out))
	}
	if all := append(bytes.Clone(res.out), res.rest...); !bytes.Equal(all, input) {
		t.Errorf("output+rest differs from input:\n got %q\nwant %q", all, input)
	}
}

// failWriter fails every Write after accepting n bytes in total.
type failWriter struct {
	n   int
	err error
}

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) <= w.n {
		w.n -= len(p)
		return len(p), nil
	}
	n := w.n
	w.n = 0
	return n, w.err
}

// shortWriter writes half of each buffer and reports no error.
type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

// emptyReader returns no bytes and no error, for ever.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }
