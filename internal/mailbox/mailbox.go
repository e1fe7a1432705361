// Package mailbox reads stored mail for check's replay: a message file, a Maildir (every
// message file in cur/ and new/) or an mbox file (every message, with mboxrd quoting
// undone), and the envelope a delivery agent wrote at the top of a stored message
// ([Delivery]). It reads; it never writes, moves or renames a message.
//
// What a path holds is decided by [Open]:
//
//   - a directory with cur/ and new/ in it is a Maildir (tmp/, where messages are still
//     being delivered, is not read); any other directory is an error;
//   - a file that starts with "From " is an mbox, and so is an empty file (an emptied mail
//     spool);
//   - anything else is one message.
package mailbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Kind is what a path holds.
type Kind uint8

const (
	KindFile    Kind = iota // one message
	KindMaildir             // a Maildir: the files of cur/, then those of new/
	KindMbox                // an mbox file: its messages in file order
)

// Message is one message of a [Source].
type Message struct {
	// Name is what to call the message: its file's path for a message file or a Maildir
	// entry (the Maildir's path as given, joined with cur/ or new/ and the entry), the
	// mbox's path and the message's index from 1 for an mbox ("archive#3").
	Name string
	// Reader gives the message's bytes (for an mbox without its "From " line and with
	// the quoting of ">From " lines undone). It is valid until the next call of
	// [Source.Next] or [Source.Close].
	Reader io.Reader
}

// Source is the messages of one path (or of standard input), one at a time, in a stable
// order.
type Source struct {
	Path string
	Kind Kind

	f     *os.File // the file being read: the message file, the mbox, the Maildir entry
	br    *bufio.Reader
	done  bool     // KindFile: the message was returned
	names []string // KindMaildir: the entries still to read, relative to Path
	mbox  *mboxReader
}

// bufSize is the read buffer of a message file or an mbox: lines longer than this are
// read in pieces.
const bufSize = 64 << 10

// Open opens path and says what it holds (see the package documentation). An error means
// that nothing of path can be read: it does not exist, it cannot be opened or listed, or
// it is a directory that is not a Maildir.
func Open(path string) (*Source, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("mailbox: %w", err)
	}
	if fi.IsDir() {
		return openMaildir(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mailbox: %w", err)
	}
	br := bufio.NewReaderSize(f, bufSize)
	start, err := br.Peek(len(fromLine))
	if err != nil && err != io.EOF {
		f.Close()
		return nil, fmt.Errorf("mailbox: %s: %w", path, err)
	}
	if len(start) == 0 || string(start) == fromLine {
		s := mboxFrom(path, br)
		s.f = f
		return s, nil
	}
	return &Source{Path: path, Kind: KindFile, f: f, br: br}, nil
}

// mboxFrom is the mbox read from r, called path.
func mboxFrom(path string, r io.Reader) *Source {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, bufSize)
	}
	return &Source{Path: path, Kind: KindMbox, br: br, mbox: &mboxReader{br: br, first: true}}
}

// FromReader is a source of one message read from r (standard input), called name.
func FromReader(name string, r io.Reader) *Source {
	return &Source{Path: name, Kind: KindFile, br: bufio.NewReaderSize(r, bufSize)}
}

// openMaildir lists the message files of a Maildir: cur/ then new/, each in byte order of
// the file names (which begin with the delivery time), leaving out dot files and
// directories.
func openMaildir(path string) (*Source, error) {
	s := &Source{Path: path, Kind: KindMaildir}
	for _, sub := range []string{"cur", "new"} {
		fi, err := os.Stat(filepath.Join(path, sub))
		if err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("mailbox: %s: a directory but not a Maildir (it needs cur/ and new/)", path)
		}
	}
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(path, sub))
		if err != nil {
			return nil, fmt.Errorf("mailbox: %w", err)
		}
		for _, e := range entries { // sorted by name
			if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
				continue
			}
			s.names = append(s.names, filepath.Join(sub, e.Name()))
		}
	}
	return s, nil
}

// Next returns the next message, or io.EOF after the last. Any other error concerns the
// returned message alone, whose Name is set: it could not be opened (a Maildir entry that
// a mail reader moved meanwhile, a file without permission), and the caller may go on
// with Next. In an mbox, a read error ends the mbox: the message it happened in gets it
// from its Reader, and Next then returns io.EOF, since where the next message starts is
// unknown.
func (s *Source) Next() (Message, error) {
	switch s.Kind {
	case KindFile:
		if s.done {
			return Message{}, io.EOF
		}
		s.done = true
		return Message{Name: s.Path, Reader: s.br}, nil
	case KindMbox:
		n, r, err := s.mbox.next()
		if err == io.EOF {
			return Message{}, err
		}
		if err != nil {
			return Message{Name: s.Path + "#" + strconv.Itoa(s.mbox.n+1)}, err
		}
		return Message{Name: s.Path + "#" + strconv.Itoa(n), Reader: r}, nil
	}
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if len(s.names) == 0 {
		return Message{}, io.EOF
	}
	name := filepath.Join(s.Path, s.names[0])
	s.names = s.names[1:]
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w (moved or deleted since the Maildir was listed)", err)
		}
		return Message{Name: name}, fmt.Errorf("mailbox: %w", err)
	}
	s.f = f
	if s.br == nil {
		s.br = bufio.NewReaderSize(f, bufSize)
	} else {
		s.br.Reset(f)
	}
	return Message{Name: name, Reader: s.br}, nil
}

// Close releases the open file, if any.
func (s *Source) Close() error {
	s.names, s.done = nil, true
	if s.mbox != nil {
		s.mbox.err = errClosed
	}
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

var errClosed = errors.New("mailbox: source closed")
