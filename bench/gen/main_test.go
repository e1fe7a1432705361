package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"block-forged-sender/internal/cdb"
)

func TestMessage(t *testing.T) {
	for _, size := range []int64{int64(len(header)) + 1, 4096, 65536 + 17, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var a, b bytes.Buffer
			if err := Message(&a, size); err != nil {
				t.Fatal(err)
			}
			if err := Message(&b, size); err != nil {
				t.Fatal(err)
			}
			got := a.Bytes()
			if int64(len(got)) != size {
				t.Errorf("Message(%d) wrote %d bytes", size, len(got))
			}
			if !bytes.Equal(got, b.Bytes()) {
				t.Errorf("Message(%d) differs between two calls", size)
			}
			if !bytes.HasPrefix(got, []byte(header)) || got[len(got)-1] != '\n' {
				t.Errorf("Message(%d) does not start with the header and end with a LF", size)
			}
			if bytes.Contains(got[len(header):], []byte("\n\n")) {
				t.Errorf("Message(%d) has an empty line in its body", size)
			}
		})
	}
	if err := Message(&bytes.Buffer{}, int64(len(header))); err == nil {
		t.Errorf("Message(%d) = nil error, want one: no room for a body", len(header))
	}
}

func TestRules(t *testing.T) {
	var b bytes.Buffer
	if err := Rules(&b, 200); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 201 { // a comment and 200 entries
		t.Fatalf("Rules(200) wrote %d lines, want 201", len(lines))
	}
	want := map[int]string{
		0:   "# generated list of 200 entries",
		1:   "@acme-corp.example\tforged sender: acme-corp.example used from outside",
		3:   "@h2.example\tspam host",
		4:   ".s3.example\tspam network",
		5:   "user4@host0.example\tphishing campaign 4",
		100: "!billing99@h97.example rcpt=@acme-corp.example allowed partner",
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
}

func TestEnvelope(t *testing.T) {
	if got, want := Envelope(), "Fpriya.raman@northwind-traders.example\x00Tfrontoffice@acme-corp.example\x00\x00"; got != want {
		t.Errorf("Envelope() = %q, want %q", got, want)
	}
}

// TestRecords checks the cdbmake input against the records of a CDB written here.
func TestRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.cdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cdb.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"@h2.example", "v\x00\n1"}, {"", ""}, {"@h2.example", "second"}} {
		if err := w.Add([]byte(kv[0]), []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Records(&b, path); err != nil {
		t.Fatal(err)
	}
	want := "+11,4:@h2.example->v\x00\n1\n+0,0:->\n+11,6:@h2.example->second\n\n"
	if b.String() != want {
		t.Errorf("Records = %q, want %q", b.String(), want)
	}
}
