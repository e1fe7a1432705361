package cdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// writeBufferSize is the size of the Writer's output buffer.
const writeBufferSize = 256 << 10

// errFinished is returned by a Writer used after Finish.
var errFinished = errors.New("cdb: writer already finished")

// slot is one hash table entry: the key's hash and its record's position.
type slot struct {
	h, pos uint32
}

// Writer builds a cdb file. Records are written through a large buffer as they
// are added; only the hash and position of each record (8 bytes) are kept in
// memory until [Writer.Finish] writes the hash tables and then the header.
//
// The file is laid out exactly as cdbmake lays it out, so the same records added
// in the same order give the same bytes. A Writer is not safe for concurrent use.
type Writer struct {
	w      io.WriteSeeker
	bw     *bufio.Writer
	pos    uint64      // position of the next record
	n      uint64      // records added
	tables [256][]slot // per table, in insertion order
	rec    [8]byte     // scratch for a record header
	err    error       // sticky write error, or errFinished
}

// NewWriter returns a Writer that writes a cdb file to w, which must be positioned
// at offset 0 (normally an empty file). The first 2048 bytes are written as zeros
// and filled in by [Writer.Finish].
func NewWriter(w io.WriteSeeker) (*Writer, error) {
	cw := &Writer{
		w:   w,
		bw:  bufio.NewWriterSize(w, writeBufferSize),
		pos: headerSize,
	}
	var zero [headerSize]byte
	if _, err := cw.bw.Write(zero[:]); err != nil {
		return nil, fmt.Errorf("cdb: write header: %w", err)
	}
	return cw, nil
}

// Add appends a record. A key may be added several times; readers see its values
// in the order they were added. It returns [ErrTooLarge], and writes nothing, when
// the finished file would be larger than the format allows; the Writer stays usable.
func (w *Writer) Add(key, value []byte) error {
	if w.err != nil {
		return w.err
	}
	// The finished file is the records plus 16 bytes (two slots) per record.
	// Checking that here makes Finish unable to fail with ErrTooLarge.
	size := uint64(len(key)) + uint64(len(value)) + 8
	if w.pos+size+16*(w.n+1) > maxSize {
		return ErrTooLarge
	}
	h := hash(key)
	binary.LittleEndian.PutUint32(w.rec[0:4], uint32(len(key)))
	binary.LittleEndian.PutUint32(w.rec[4:8], uint32(len(value)))
	if _, err := w.bw.Write(w.rec[:]); err != nil {
		return w.fail(err)
	}
	if _, err := w.bw.Write(key); err != nil {
		return w.fail(err)
	}
	if _, err := w.bw.Write(value); err != nil {
		return w.fail(err)
	}
	t := &w.tables[h&255]
	*t = append(*t, slot{h: h, pos: uint32(w.pos)})
	w.pos += size
	w.n++
	return nil
}

func (w *Writer) fail(err error) error {
	w.err = fmt.Errorf("cdb: write: %w", err)
	return w.err
}

// Finish writes the 256 hash tables, flushes the buffer, seeks w back to offset 0
// and writes the header. It does not close w. The Writer cannot be used afterwards.
func (w *Writer) Finish() error {
	if w.err != nil {
		return w.err
	}
	if w.pos+16*w.n > maxSize { // unreachable given the check in Add
		return ErrTooLarge
	}
	var header [headerSize]byte
	maxSlots := 0
	for i := range w.tables {
		maxSlots = max(maxSlots, 2*len(w.tables[i]))
	}
	table := make([]slot, maxSlots)
	out := make([]byte, 0, 8*maxSlots)
	for i, entries := range w.tables {
		nslots := uint32(2 * len(entries))
		binary.LittleEndian.PutUint32(header[8*i:], uint32(w.pos))
		binary.LittleEndian.PutUint32(header[8*i+4:], nslots)
		if nslots == 0 {
			continue
		}
		t := table[:nslots]
		clear(t)
		// Linear probing from (h >> 8) % nslots, in insertion order, as cdbmake
		// does: a reader probing from the same slot meets a key's values in order.
		for _, e := range entries {
			j := (e.h >> 8) % nslots
			for t[j].pos != 0 {
				if j++; j == nslots {
					j = 0
				}
			}
			t[j] = e
		}
		out = out[:0]
		for _, e := range t {
			out = binary.LittleEndian.AppendUint32(out, e.h)
			out = binary.LittleEndian.AppendUint32(out, e.pos)
		}
		if _, err := w.bw.Write(out); err != nil {
			return w.fail(err)
		}
		w.pos += 8 * uint64(nslots)
		w.tables[i] = nil
	}
	if err := w.bw.Flush(); err != nil {
		return w.fail(err)
	}
	if _, err := w.w.Seek(0, io.SeekStart); err != nil {
		w.err = fmt.Errorf("cdb: seek: %w", err)
		return w.err
	}
	if _, err := w.w.Write(header[:]); err != nil {
		return w.fail(err)
	}
	w.err = errFinished
	return nil
}
