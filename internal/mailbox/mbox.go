package mailbox

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// fromLine starts the line that separates the messages of an mbox.
const fromLine = "From "

// fillSize is how much of a message mboxReader prepares per read.
const fillSize = 32 << 10

// mboxReader splits an mbox file into messages, as mboxrd readers do.
//
// A message starts after a line that begins with "From " and is the file's first line or
// follows an empty line; that "From " line and the empty line before it (which the writer
// puts after every message, the last one included) are not part of any message. A "From "
// line that follows a line with text is part of the message: writers quote such lines in a
// body (">From "), and one that did not would otherwise cut the message in two and let its
// body be read as a header. In a message, a line of one or more '>' followed by "From "
// loses one '>' (mboxrd; in an mboxo file, where only "From " was quoted, this undoes that
// quoting too). Line ends are LF, or CRLF.
type mboxReader struct {
	br    *bufio.Reader
	first bool // the file's first line is still to read
	n     int  // index of the current message, from 1
	in    bool // the current message has not ended
	eof   bool // the file has ended
	err   error
	// errSeen: err was returned by the message's Read, so the caller knows of it.
	errSeen bool
	// sep: the current message ended at a separator line; sepDone: the whole line was read.
	sep, sepDone bool

	lineStart bool    // the next byte read starts a line
	blank     [2]byte // an empty line held back: it ends the message if "From " follows
	nblank    int     // its length (0: none held)
	buf       []byte  // prepared bytes of the message
	out       []byte  // what of buf the caller has not read yet
	msg       message
}

// message is the io.Reader of the current message.
type message struct{ m *mboxReader }

func (r *message) Read(p []byte) (int, error) { return r.m.read(p) }

// next skips what is left of the current message and starts the next one.
func (m *mboxReader) next() (int, io.Reader, error) {
	for m.in && m.err == nil {
		m.fill()
	}
	m.out = nil
	switch {
	case m.err != nil && !m.errSeen:
		m.errSeen = true
		return 0, nil, fmt.Errorf("%w (after message %d: the rest of the mbox is not read)", m.err, m.n)
	case m.err != nil:
		return 0, nil, io.EOF
	case m.first:
		m.first = false
		if n := m.skipLine(); n == 0 {
			return 0, nil, io.EOF // an empty file: no message
		}
	case m.sep:
		m.sep = false
		if !m.sepDone {
			m.skipLine()
		}
	default:
		return 0, nil, io.EOF // the last message ended with the file
	}
	if m.err != nil {
		m.errSeen = true
		return 0, nil, fmt.Errorf("%w (in the \"From \" line of message %d: the rest of the mbox is not read)", m.err, m.n+1)
	}
	m.n++
	m.in, m.lineStart, m.nblank = !m.eof, true, 0
	m.msg.m = m
	return m.n, &m.msg, nil
}

// skipLine reads to the end of the current line and returns how many bytes it read.
func (m *mboxReader) skipLine() int {
	n := 0
	for {
		l, err := m.br.ReadSlice('\n')
		n += len(l)
		switch err {
		case nil:
			return n
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			m.eof = true
		default:
			m.err = fmt.Errorf("mailbox: %w", err)
		}
		return n
	}
}

func (m *mboxReader) read(p []byte) (int, error) {
	for len(m.out) == 0 {
		switch {
		case m.err != nil:
			m.errSeen = true
			return 0, m.err
		case !m.in:
			return 0, io.EOF
		}
		m.fill()
	}
	n := copy(p, m.out)
	m.out = m.out[n:]
	return n, nil
}

// fill prepares the next bytes of the message, line by line, until about fillSize of them
// or the end of the message.
func (m *mboxReader) fill() {
	m.buf = m.buf[:0]
	for len(m.buf) < fillSize && m.in {
		l, err := m.br.ReadSlice('\n')
		if len(l) > 0 {
			m.line(l, err == nil)
		}
		switch err {
		case nil, bufio.ErrBufferFull:
			continue
		case io.EOF:
			// The empty line still held is the one the writer put after the last message.
			m.eof, m.in = true, false
		default:
			m.err = fmt.Errorf("mailbox: %w", err)
			m.in = false
		}
	}
	m.out = m.buf
}

// line takes the next piece of the file: a whole line when complete, else the start or
// more of a line longer than the read buffer (which is longer than any quoting prefix).
func (m *mboxReader) line(l []byte, complete bool) {
	start := m.lineStart
	m.lineStart = complete
	if !start {
		m.buf = append(m.buf, l...)
		return
	}
	if complete && (len(l) == 1 || len(l) == 2 && l[0] == '\r') {
		m.flushBlank()
		m.nblank = copy(m.blank[:], l)
		return
	}
	if m.nblank > 0 && bytes.HasPrefix(l, []byte(fromLine)) {
		m.nblank = 0
		m.in, m.sep, m.sepDone = false, true, complete
		return
	}
	m.flushBlank()
	if quoted(l) {
		l = l[1:]
	}
	m.buf = append(m.buf, l...)
}

func (m *mboxReader) flushBlank() {
	m.buf = append(m.buf, m.blank[:m.nblank]...)
	m.nblank = 0
}

// quoted reports whether l is ">From ", ">>From ", ...: a line that the writer quoted.
func quoted(l []byte) bool {
	i := 0
	for i < len(l) && l[i] == '>' {
		i++
	}
	return i > 0 && bytes.HasPrefix(l[i:], []byte(fromLine))
}
