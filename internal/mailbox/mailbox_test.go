package mailbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll returns the names and contents of every message of src, and the errors of the
// messages that could not be read, by name.
func readAll(t *testing.T, src *Source) (names, bodies []string, errs map[string]error) {
	t.Helper()
	errs = map[string]error{}
	for {
		m, err := src.Next()
		if err == io.EOF {
			return names, bodies, errs
		}
		names = append(names, m.Name)
		if err != nil {
			errs[m.Name] = err
			bodies = append(bodies, "")
			continue
		}
		b, err := io.ReadAll(m.Reader)
		if err != nil {
			errs[m.Name] = err
		}
		bodies = append(bodies, string(b))
	}
}

// short quotes each string, its middle cut when it is long.
func short(ss []string) string {
	var b strings.Builder
	for _, s := range ss {
		if len(s) > 200 {
			s = s[:100] + "[...]" + s[len(s)-100:]
		}
		fmt.Fprintf(&b, "%q\n", s)
	}
	return b.String()
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMbox(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"empty file: no message", "", nil},
		{"one message", "From a@b Thu Jan  1 00:00:00 2026\nSubject: x\n\nbody\n\n", []string{"Subject: x\n\nbody\n"}},
		{"two messages",
			"From a@b Thu Jan  1 00:00:00 2026\nSubject: 1\n\none\n\nFrom c@d Thu Jan  1 00:00:01 2026\nSubject: 2\n\ntwo\n\n",
			[]string{"Subject: 1\n\none\n", "Subject: 2\n\ntwo\n"}},
		{"quoting undone one level",
			"From a@b\nSubject: q\n\n>From the start\n>>From quoted twice\n> From not quoted\n>From\n>>>x\n\n",
			[]string{"Subject: q\n\nFrom the start\n>From quoted twice\n> From not quoted\n>From\n>>>x\n"}},
		{"a From line after text is part of the message (an unquoted body)",
			"From a@b\nSubject: u\n\nsee below\nFrom: ceo@ours.example\n\n",
			[]string{"Subject: u\n\nsee below\nFrom: ceo@ours.example\n"}},
		{"From without a space is no separator",
			"From a@b\nSubject: 1\n\nx\n\nFrom: y@z\n\n",
			[]string{"Subject: 1\n\nx\n\nFrom: y@z\n"}},
		{"empty lines of the message are kept",
			"From a@b\nS: 1\n\n\n\nFrom c@d\nS: 2\n\n",
			[]string{"S: 1\n\n\n", "S: 2\n"}},
		{"empty messages", "From a@b\n\nFrom c@d\n\n", []string{"", ""}},
		{"separator at the end without a newline", "From a@b\nS: 1\n\nFrom c@d", []string{"S: 1\n", ""}},
		{"no final empty line, no final newline", "From a@b\nS: 1\n\nbody", []string{"S: 1\n\nbody"}},
		{"CRLF", "From a@b\r\nS: 1\r\n\r\n>From x\r\n\r\nFrom c@d\r\nS: 2\r\n\r\n", []string{"S: 1\r\n\r\nFrom x\r\n", "S: 2\r\n"}},
		{"a long line", "From a@b\nS: 1\n\n" + strings.Repeat("x", 3*bufSize) + "\n>From y\n\n",
			[]string{"S: 1\n\n" + strings.Repeat("x", 3*bufSize) + "\nFrom y\n"}},
		{"a long line that starts with From after text", "From a@b\nS: 1\n\ntext\n" + "From " + strings.Repeat("x", 2*bufSize) + "\n\nFrom c@d\nS: 2\n\n",
			[]string{"S: 1\n\ntext\nFrom " + strings.Repeat("x", 2*bufSize) + "\n", "S: 2\n"}},
		{"a long separator line", "From a@b\nS: 1\n\nFrom " + strings.Repeat("x", 2*bufSize) + "\nS: 2\n\n",
			[]string{"S: 1\n", "S: 2\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "archive")
			write(t, path, tt.file)
			src, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if src.Kind != KindMbox {
				t.Fatalf("kind %v, want an mbox", src.Kind)
			}
			names, bodies, errs := readAll(t, src)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if !slices.Equal(bodies, tt.want) {
				t.Errorf("messages:\n%s\nwant:\n%s", short(bodies), short(tt.want))
			}
			for i, n := range names {
				if want := path + "#" + string(rune('1'+i)); n != want {
					t.Errorf("name %q, want %q", n, want)
				}
			}
		})
	}
}

// TestMboxPartlyRead: a message read only in part (the header scan stopped) is skipped
// to its end, and the next message is whole.
func TestMboxPartlyRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "archive")
	write(t, path, "From a@b\nS: 1\n\n"+strings.Repeat("body\n", 50000)+"\nFrom c@d\nS: 2\n\n")
	src, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m, err := src.Next()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reader.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	m, err = src.Next()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(m.Reader); err != nil || string(b) != "S: 2\n" || m.Name != path+"#2" {
		t.Errorf("second message %s: %q, %v", m.Name, b, err)
	}
	if _, err := src.Next(); err != io.EOF {
		t.Errorf("after the last: %v, want io.EOF", err)
	}
}

// TestMboxReadError: a read error reaches the message it happens in, or, when it happens
// while Next skips a message, Next reports it once; the mbox ends there.
func TestMboxReadError(t *testing.T) {
	data := "From a@b\nS: 1\n\nbody\n\nFrom c@d\nS: 2\n\n" + strings.Repeat("more\n", 1000)
	disk := errors.New("disk on fire")
	for _, readSecond := range []bool{true, false} {
		src := mboxFrom("archive", io.MultiReader(strings.NewReader(data), iotest.ErrReader(disk)))
		m, err := src.Next()
		if b, rerr := io.ReadAll(m.Reader); err != nil || rerr != nil || string(b) != "S: 1\n\nbody\n" {
			t.Fatalf("message 1: %q, %v, %v", b, err, rerr)
		}
		m, err = src.Next()
		if err != nil || m.Name != "archive#2" {
			t.Fatalf("message 2: %+v, %v", m, err)
		}
		if readSecond {
			if _, err := io.ReadAll(m.Reader); !errors.Is(err, disk) {
				t.Errorf("reading message 2: %v, want the read error", err)
			}
		} else if m, err := src.Next(); !errors.Is(err, disk) || m.Name != "archive#3" {
			t.Errorf("Next after an unread message 2: %+v, %v; want the read error, named archive#3", m, err)
		}
		if _, err := src.Next(); err != io.EOF {
			t.Errorf("after the read error (read %v): %v, want io.EOF", readSecond, err)
		}
	}
}

func TestKinds(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "msg.eml"), "From: a@b\n\nx\n")
	write(t, filepath.Join(dir, "mbox"), "From a@b\n\n")
	write(t, filepath.Join(dir, "Maildir", "cur", "1"), "S: 1\n")
	os.MkdirAll(filepath.Join(dir, "Maildir", "new"), 0o755)
	os.MkdirAll(filepath.Join(dir, "plain", "cur"), 0o755)
	for name, want := range map[string]Kind{"msg.eml": KindFile, "mbox": KindMbox, "Maildir": KindMaildir} {
		src, err := Open(filepath.Join(dir, name))
		if err != nil || src.Kind != want {
			t.Errorf("Open(%s) = %v, %v; want kind %v", name, src, err, want)
			continue
		}
		src.Close()
	}
	if _, err := Open(filepath.Join(dir, "plain")); err == nil || !strings.Contains(err.Error(), "not a Maildir") {
		t.Errorf("a directory without new/: %v, want not a Maildir", err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing path: %v", err)
	}
	src := FromReader("-", strings.NewReader("From a@b\n\n"))
	_, bodies, _ := readAll(t, src)
	if !slices.Equal(bodies, []string{"From a@b\n\n"}) {
		t.Errorf("standard input is one message as it is: %q", bodies)
	}
}

func TestMaildir(t *testing.T) {
	md := filepath.Join(t.TempDir(), "Maildir")
	write(t, filepath.Join(md, "cur", "1700000002.M1P1.host:2,S"), "S: c2\n")
	write(t, filepath.Join(md, "cur", "1700000001.M1P1.host:2,"), "S: c1\n")
	write(t, filepath.Join(md, "new", "1700000003.M1P1.host"), "S: n3\n")
	write(t, filepath.Join(md, "new", ".hidden"), "S: hidden\n")
	write(t, filepath.Join(md, "tmp", "1700000004.M1P1.host"), "S: being delivered\n")
	os.Mkdir(filepath.Join(md, "cur", "subdir"), 0o755)
	os.Symlink("nowhere", filepath.Join(md, "new", "1700000004.M1P1.gone"))
	src, err := Open(md)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	names, bodies, errs := readAll(t, src)
	want := []string{
		filepath.Join(md, "cur", "1700000001.M1P1.host:2,"),
		filepath.Join(md, "cur", "1700000002.M1P1.host:2,S"),
		filepath.Join(md, "new", "1700000003.M1P1.host"),
		filepath.Join(md, "new", "1700000004.M1P1.gone"),
	}
	if !slices.Equal(names, want) {
		t.Errorf("names:\n%q\nwant:\n%q", names, want)
	}
	if !slices.Equal(bodies, []string{"S: c1\n", "S: c2\n", "S: n3\n", ""}) {
		t.Errorf("bodies %q", bodies)
	}
	if err := errs[want[3]]; !errors.Is(err, fs.ErrNotExist) || len(errs) != 1 {
		t.Errorf("errors %v; want the dangling entry's alone", errs)
	}
}

func TestDelivery(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		sender  string
		found   bool
		err     bool
		rcpt    string
		field   string
		hasRcpt bool
	}{
		{"qmail-local", "Return-Path: <anna@partner.example>\nDelivered-To: sales@ours.example\nReceived: x\nFrom: a@b\n\nbody\n",
			"anna@partner.example", true, false, "sales@ours.example", "Delivered-To", true},
		{"postfix local", "Return-Path: <anna@partner.example>\r\nX-Original-To: sales@ours.example\r\nDelivered-To: anna.local@ours.example\r\n\r\n",
			"anna@partner.example", true, false, "sales@ours.example", "X-Original-To", true},
		{"the first of several (the last delivery)", "Return-Path: <second@x.example>\nDelivered-To: me@ours.example\nReturn-Path: <first@y.example>\nDelivered-To: old@other.example\n\n",
			"second@x.example", true, false, "me@ours.example", "Delivered-To", true},
		{"null sender", "Return-Path: <>\n\n", "", true, false, "", "", false},
		{"blanks, case, before the colon, folded", "return-path :\n  < anna@partner.example >\nDELIVERED-TO:\t<sales@ours.example>\n\n",
			"anna@partner.example", true, false, "sales@ours.example", "Delivered-To", true},
		{"a bare address", "Return-Path: anna@partner.example\n\n", "anna@partner.example", true, false, "", "", false},
		{"no address", "Return-Path: anna at partner\n\n", "", true, true, "", "", false},
		{"empty", "Return-Path:\n\n", "", true, true, "", "", false},
		{"too long", "Return-Path: <" + strings.Repeat("a", MaxDeliveryField) + "@x>\n\n", "", true, true, "", "", false},
		{"none", "From: a@b\nSubject: s\n\nReturn-Path: <body@x.example>\n", "", false, false, "", "", false},
		{"not in the body", "Subject: s\n\nReturn-Path: <body@x.example>\nDelivered-To: body@x.example\n", "", false, false, "", "", false},
		{"a header without a body", "Subject: s\nReturn-Path: <late@x.example>", "late@x.example", true, false, "", "", false},
		{"a look-alike name", "Return-Paths: <x@y>\nX-Delivered-To: a@b\n\n", "", false, false, "", "", false},
		{"a continuation of another field", "Subject: s\n Return-Path: <x@y>\n\n", "", false, false, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tt.msg), iotest.OneByteReader(strings.NewReader(tt.msg))} {
				d := NewDelivery(r)
				var out bytes.Buffer
				if _, err := io.Copy(&out, d); err != nil || out.String() != tt.msg {
					t.Fatalf("passed through %q, %v", out.String(), err)
				}
				s, found, err := d.Sender()
				if s != tt.sender || found != tt.found || (err != nil) != tt.err {
					t.Errorf("Sender() = %q, %v, %v; want %q, %v, error %v", s, found, err, tt.sender, tt.found, tt.err)
				}
				if err != nil && !errors.Is(err, ErrReturnPath) {
					t.Errorf("error %v does not wrap ErrReturnPath", err)
				}
				rcpt, field, ok := d.Recipient()
				if rcpt != tt.rcpt || field != tt.field || ok != tt.hasRcpt {
					t.Errorf("Recipient() = %q, %q, %v; want %q, %q, %v", rcpt, field, ok, tt.rcpt, tt.field, tt.hasRcpt)
				}
			}
		})
	}
}
