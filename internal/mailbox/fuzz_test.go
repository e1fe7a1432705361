package mailbox

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// writeMboxrd writes msgs as an mboxrd writer does (qmail-local, Postfix's local): a
// "From " line, the message with every line of '>'s and "From " quoted with one more '>',
// a newline if it lacks one, then an empty line.
func writeMboxrd(msgs [][]byte) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteString("From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n")
		for len(m) > 0 {
			line := m
			if i := bytes.IndexByte(m, '\n'); i >= 0 {
				line = m[:i+1]
			}
			m = m[len(line):]
			if quoted(line) || bytes.HasPrefix(line, []byte(fromLine)) {
				b.WriteByte('>')
			}
			b.Write(line)
			if !bytes.HasSuffix(line, []byte("\n")) {
				b.WriteByte('\n')
			}
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// FuzzMbox: the messages an mboxrd writer stores are read back exactly (with the newline
// the writer adds to a message that lacks one), one for one.
func FuzzMbox(f *testing.F) {
	for _, s := range []string{
		"Subject: a\n\nbody\n", "S: 1\n\nFrom x\n>From y\n\x00S: 2\n\n>>From z\n",
		"\n\n\x00\x00\n", "S: crlf\r\n\r\nFrom x\r\n\r\n\x00", "no newline\x00From start\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs := bytes.Split(data, []byte{0})
		if len(msgs) > 16 {
			return
		}
		src := mboxFrom("mbox", bytes.NewReader(writeMboxrd(msgs)))
		for i, want := range msgs {
			if len(want) > 0 && want[len(want)-1] != '\n' {
				want = append(want, '\n')
			}
			m, err := src.Next()
			if err != nil {
				t.Fatalf("message %d: %v", i+1, err)
			}
			got, err := io.ReadAll(iotest.HalfReader(m.Reader))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("message %d: %q, %v; want %q", i+1, got, err, want)
			}
		}
		if _, err := src.Next(); err != io.EOF {
			t.Fatalf("after %d messages: %v, want io.EOF", len(msgs), err)
		}
	})
}

// FuzzDelivery: Delivery passes every byte through, and what it finds does not depend on
// how the reads are cut.
func FuzzDelivery(f *testing.F) {
	for _, s := range []string{
		"Return-Path: <a@b>\nDelivered-To: c@d\n\nbody", "return-path :\r\n <>\r\nX-Original-To: x@y\r\n\r\n",
		"\r\nReturn-Path: <a@b>\n", "Subject: s\n Return-Path: <a@b>\n\n", "Return-Path: a b\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		type found struct {
			sender, rcpt, field string
			ok, rok, err        bool
		}
		var results []found
		for _, r := range []io.Reader{bytes.NewReader(msg), iotest.OneByteReader(bytes.NewReader(msg))} {
			d := NewDelivery(r)
			out, err := io.ReadAll(d)
			if err != nil || !bytes.Equal(out, msg) {
				t.Fatalf("passed through %q, %v", out, err)
			}
			var f found
			var serr error
			f.sender, f.ok, serr = d.Sender()
			f.err = serr != nil
			f.rcpt, f.field, f.rok = d.Recipient()
			results = append(results, f)
		}
		if results[0] != results[1] {
			t.Fatalf("whole reads found %+v, one-byte reads %+v", results[0], results[1])
		}
	})
}
