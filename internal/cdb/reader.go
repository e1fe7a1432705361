package cdb

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

const (
	// probeSlots is how many hash table slots a Lookup reads at once, so that a
	// typical lookup costs one read for the slots and one for the record.
	probeSlots = 32
	// recordRead is the initial size of the record buffer: one read usually gets
	// the record header, the key and the value together.
	recordRead = 512
	// scanBufferSize is the read buffer of ForEach.
	scanBufferSize = 64 << 10
)

var errClosed = errors.New("cdb: reader is closed")
var errBusy = errors.New("cdb: reader used from inside a Lookup callback")

// Reader looks up keys in a cdb file. It reads with ReadAt (pread), into buffers
// it owns, and never maps the file, so a file truncated or changed underneath
// gives an error, not a crash. A corrupt or hostile file gives an error wrapping
// [ErrCorrupt]: probing is bounded by the slot count and every offset is checked
// against the file size before it is read.
//
// A Reader is not safe for concurrent use: its methods share its buffers. Open one
// Reader per goroutine (opening is cheap).
type Reader struct {
	r    io.ReaderAt
	f    *os.File // set when Open opened the file; closed by Close
	size uint64   // file size, capped at maxSize

	header    [headerSize]byte // read on first use
	hasHeader bool
	busy      bool // inside Lookup, whose callback must not reenter

	slots [probeSlots * 8]byte
	buf   []byte // record buffer, grown for large records
}

// Open opens the cdb file at path. It only opens the file and checks its size;
// the header is read by the first lookup.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r, err := NewReader(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	r.f = f
	return r, nil
}

// NewReader returns a Reader for the cdb file of the given size read through r.
// It reads nothing. [Reader.Close] does not close r.
func NewReader(r io.ReaderAt, size int64) (*Reader, error) {
	if size < headerSize {
		return nil, fmt.Errorf("%w: file of %d bytes is shorter than the 2048-byte header", ErrCorrupt, size)
	}
	// As in tinycdb, bytes past 4 GiB cannot be addressed and are ignored.
	return &Reader{r: r, size: min(uint64(size), maxSize)}, nil
}

// Close closes the file opened by [Open]. Afterwards Lookup, Get and ForEach
// return an error.
func (r *Reader) Close() error {
	if r.busy {
		return errBusy
	}
	f := r.f
	r.r, r.f, r.buf = nil, nil, nil
	if f != nil {
		return f.Close()
	}
	return nil
}

// readAt fills p from offset off, which the caller has checked lies in the file.
// A short read means the file shrank after it was opened.
func (r *Reader) readAt(p []byte, off uint64) error {
	n, err := r.r.ReadAt(p, int64(off))
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		return fmt.Errorf("%w: truncated file: %d bytes at offset %d, read %d", ErrCorrupt, len(p), off, n)
	}
	return fmt.Errorf("cdb: read: %w", err)
}

func (r *Reader) loadHeader() error {
	if r.r == nil {
		return errClosed
	}
	if r.hasHeader {
		return nil
	}
	if err := r.readAt(r.header[:], 0); err != nil {
		return err
	}
	r.hasHeader = true
	return nil
}

// record reads the record at pos. When its key length is klen, the returned buffer
// holds the whole record; otherwise only its 8-byte header.
func (r *Reader) record(pos uint64, klen int) (rec []byte, err error) {
	if pos < headerSize || r.size-pos < 8 {
		return nil, fmt.Errorf("%w: record position %d out of range", ErrCorrupt, pos)
	}
	if cap(r.buf) < recordRead {
		r.buf = make([]byte, recordRead)
	}
	rec = r.buf[:min(uint64(cap(r.buf)), r.size-pos)]
	if err := r.readAt(rec, pos); err != nil {
		return nil, err
	}
	kl := uint64(binary.LittleEndian.Uint32(rec[0:4]))
	dl := uint64(binary.LittleEndian.Uint32(rec[4:8]))
	if r.size-pos-8 < kl+dl {
		return nil, fmt.Errorf("%w: record at %d runs past the end of the file", ErrCorrupt, pos)
	}
	need := 8 + kl + dl
	if kl != uint64(klen) || need <= uint64(len(rec)) {
		return rec, nil
	}
	r.buf = make([]byte, need)
	copy(r.buf, rec)
	if err := r.readAt(r.buf[len(rec):], pos+uint64(len(rec))); err != nil {
		return nil, err
	}
	return r.buf, nil
}

// Lookup calls fn with each value stored under key, in insertion order, until fn
// returns false. The value is only valid during the call, and fn must not use r.
// Lookup does not allocate once its buffer has grown to the largest record read.
func (r *Reader) Lookup(key []byte, fn func(value []byte) bool) error {
	if r.busy {
		return errBusy
	}
	if err := r.loadHeader(); err != nil {
		return err
	}
	r.busy = true
	defer func() { r.busy = false }()

	h := hash(key)
	t := r.header[8*(h&255):]
	tpos := uint64(binary.LittleEndian.Uint32(t[0:4]))
	nslots := uint64(binary.LittleEndian.Uint32(t[4:8]))
	if nslots == 0 {
		return nil
	}
	if tpos < headerSize || tpos > r.size || (r.size-tpos)/8 < nslots {
		return fmt.Errorf("%w: hash table %d at %d with %d slots out of range", ErrCorrupt, h&255, tpos, nslots)
	}
	start := uint64(h>>8) % nslots
	j := start
	var have, next uint64 // slots[:have*8] holds slots j.. in table order
	// At most nslots probes: a table with no empty slot cannot loop forever.
	for range nslots {
		if next == have {
			have = min(probeSlots, nslots-j)
			if err := r.readAt(r.slots[:have*8], tpos+8*j); err != nil {
				return err
			}
			next = 0
		}
		s := r.slots[8*next:]
		next++
		sh := binary.LittleEndian.Uint32(s[0:4])
		spos := uint64(binary.LittleEndian.Uint32(s[4:8]))
		if spos == 0 {
			return nil
		}
		if j++; j == nslots {
			j, have, next = 0, 0, 0
		}
		if sh != h {
			continue
		}
		rec, err := r.record(spos, len(key))
		if err != nil {
			return err
		}
		if int(binary.LittleEndian.Uint32(rec[0:4])) != len(key) || !bytes.Equal(rec[8:8+len(key)], key) {
			continue
		}
		dl := binary.LittleEndian.Uint32(rec[4:8])
		if !fn(rec[8+len(key) : 8+uint64(len(key))+uint64(dl)]) {
			return nil
		}
	}
	return nil
}

// Get returns a copy of the first value stored under key. found is false when
// there is none; an empty value that is found is non-nil.
func (r *Reader) Get(key []byte) (value []byte, found bool, err error) {
	err = r.Lookup(key, func(v []byte) bool {
		value = append(make([]byte, 0, len(v)), v...)
		found = true
		return false
	})
	if err != nil {
		return nil, false, err
	}
	return value, found, nil
}

// ForEach calls fn for every record in file order (the order of cdbdump), until
// fn returns an error, which ForEach returns. The key and value are only valid
// during the call; fn may call [Reader.Lookup] but not [Reader.Close].
func (r *Reader) ForEach(fn func(key, value []byte) error) error {
	if r.busy {
		return errBusy
	}
	if err := r.loadHeader(); err != nil {
		return err
	}
	// The records end where the first hash table starts, as in cdbdump.
	end := uint64(binary.LittleEndian.Uint32(r.header[0:4]))
	if end < headerSize || end > r.size {
		return fmt.Errorf("%w: end of records %d out of range", ErrCorrupt, end)
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r.r, headerSize, int64(end-headerSize)), scanBufferSize)
	var buf []byte
	var hdr [8]byte
	for pos := uint64(headerSize); pos < end; {
		if end-pos < 8 {
			return fmt.Errorf("%w: truncated record at %d", ErrCorrupt, pos)
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return r.scanError(err, pos)
		}
		kl := uint64(binary.LittleEndian.Uint32(hdr[0:4]))
		dl := uint64(binary.LittleEndian.Uint32(hdr[4:8]))
		if end-pos-8 < kl+dl {
			return fmt.Errorf("%w: record at %d runs past the end of the records", ErrCorrupt, pos)
		}
		if uint64(cap(buf)) < kl+dl {
			buf = make([]byte, kl+dl)
		}
		buf = buf[:kl+dl]
		if _, err := io.ReadFull(br, buf); err != nil {
			return r.scanError(err, pos)
		}
		if err := fn(buf[:kl:kl], buf[kl:]); err != nil {
			return err
		}
		pos += 8 + kl + dl
	}
	return nil
}

func (r *Reader) scanError(err error, pos uint64) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: truncated file at record %d", ErrCorrupt, pos)
	}
	return fmt.Errorf("cdb: read: %w", err)
}
