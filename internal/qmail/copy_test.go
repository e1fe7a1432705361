package qmail

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
)

// TestCopy copies through every kind of pair: pipe to pipe (splice), file to pipe, pipe
// to file, file to file; the bytes must arrive exactly.
func TestCopy(t *testing.T) {
	data := make([]byte, 3<<20+12345)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	file := func(b []byte) *os.File {
		f, err := os.CreateTemp(t.TempDir(), "f")
		if err != nil {
			t.Fatal(err)
		}
		f.Write(b)
		f.Seek(0, 0)
		return f
	}
	for _, kind := range []string{"pipe-pipe", "file-pipe", "pipe-file", "file-file"} {
		t.Run(kind, func(t *testing.T) {
			var src, dst *os.File
			var got []byte
			done := make(chan struct{})
			if kind[:4] == "pipe" {
				r, w, _ := os.Pipe()
				go func() { w.Write(data); w.Close() }()
				src = r
			} else {
				src = file(data)
			}
			if kind[5:] == "pipe" {
				r, w, _ := os.Pipe()
				go func() { got, _ = io.ReadAll(r); close(done) }()
				dst = w
			} else {
				dst = file(nil)
				close(done)
			}
			n, err := Copy(dst, src)
			if err != nil || n != int64(len(data)) {
				t.Fatalf("Copy = %d, %v; want %d, nil", n, err, len(data))
			}
			dst.Close()
			<-done
			if kind[5:] == "file" {
				got, _ = os.ReadFile(dst.Name())
			}
			if !bytes.Equal(got, data) {
				t.Errorf("copied %d bytes, not the %d sent", len(got), len(data))
			}
		})
	}
}

// TestCopyEPIPE: a reader that goes away is an EPIPE error, not a success.
func TestCopyEPIPE(t *testing.T) {
	sr, sw, _ := os.Pipe()
	go func() { sw.Write(make([]byte, 1<<20)); sw.Close() }()
	dr, dw, _ := os.Pipe()
	dr.Close()
	_, err := Copy(dw, sr)
	if !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Copy to a pipe without reader = %v, want EPIPE", err)
	}
}
