package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"block-forged-sender/internal/cdb"
)

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lookupRules is the list TestLookup runs against; line numbers matter.
const lookupRules = `# test rules
@ours.example  forged ours
.ours.example  forged sub
!alerts@ours.example  monitoring
@scam.example  whole domain
Phisher@Scam.Example  phishing
@bücher.example  idn
!@partner.ours.example rcpt=@ours.example rcpt=.ours.example client=192.0.2.0/24 client=.partner.example  partner relay
!boss@ours.example rcpt=ceo@ours.example
"a b"@quoted.example
@junk.example  first
@junk.example  second
bad@trusted.example
!@trusted.example  trusted sender
!x@scam.example client=2001:db8::/32 client=mx.relay.example
`

// compiledList writes text as a rules file in a new directory, compiles it beside itself
// and returns the text's path.
func compiledList(t *testing.T, text string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "badsenders")
	writeFile(t, src, text)
	if _, err := Compile(src, src+".cdb"); err != nil {
		t.Fatal(err)
	}
	return src
}

// openBoth returns the rules as a CDB-backed Set and as an in-memory Set.
func openBoth(t *testing.T, text string) map[string]*Set {
	t.Helper()
	src := compiledList(t, text)
	c, err := openCDB(src + ".cdb")
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := LoadText(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); m.Close() })
	return map[string]*Set{"cdb": c, "memory": m}
}

func TestLookup(t *testing.T) {
	ip := netip.MustParseAddr
	partner := Scope{Recipients: []string{"frontoffice@ours.example", "x@hq.ours.example"}, ClientIP: ip("192.0.2.7")}
	tests := []struct {
		name          string
		addr          string
		sc            Scope
		block, except int // line numbers, 0 for none
	}{
		{"at host", "x@ours.example", Scope{}, 2, 0},
		{"empty local", "@ours.example", Scope{}, 2, 0},
		{"subdomain", "x@hq.ours.example", Scope{}, 3, 0},
		{"deep subdomain", "x@a.b.ours.example", Scope{}, 3, 0},
		{"look-alike prefix", "x@notours.example", Scope{}, 0, 0},
		{"look-alike suffix", "x@ours.example.evil.com", Scope{}, 0, 0},
		{"look-alike tld", "x@ours.examples", Scope{}, 0, 0},
		{"look-alike no dot", "x@oursexample", Scope{}, 0, 0},
		{"look-alike local", "ours.example@evil.example", Scope{}, 0, 0},
		{"unqualified", "ours.example", Scope{}, 0, 0},
		{"unqualified dot", ".ours.example", Scope{}, 3, 0},
		{"domain literal", "x@[192.0.2.1]", Scope{}, 0, 0},
		{"exception", "alerts@ours.example", Scope{}, 2, 4},
		{"exception is exact", "alerts@hq.ours.example", Scope{}, 3, 0},
		{"exact beats host", "phisher@scam.example", Scope{}, 6, 0},
		{"host", "other@scam.example", Scope{}, 5, 0},
		{"idn", "x@xn--bcher-kva.example", Scope{}, 7, 0},
		{"quoted", "a b@quoted.example", Scope{}, 10, 0},
		{"first of a key", "x@junk.example", Scope{}, 11, 0},
		{"less specific exception beats block", "bad@trusted.example", Scope{}, 13, 14},
		{"scoped in (ip)", "x@partner.ours.example", partner, 3, 8},
		{"scoped in (host)", "x@partner.ours.example", Scope{Recipients: []string{"a@ours.example"}, ClientHost: "MX1.Partner.Example."}, 3, 8},
		{"scoped host is subdomain only", "x@partner.ours.example", Scope{Recipients: []string{"a@ours.example"}, ClientHost: "partner.example"}, 3, 0},
		{"scoped client out", "x@partner.ours.example", Scope{Recipients: []string{"a@ours.example"}, ClientIP: ip("198.51.100.1")}, 3, 0},
		{"scoped mapped ip", "x@partner.ours.example", Scope{Recipients: []string{"a@ours.example"}, ClientIP: ip("::ffff:192.0.2.9")}, 3, 8},
		{"scoped one rcpt out", "x@partner.ours.example", Scope{Recipients: []string{"a@ours.example", "b@other.example"}, ClientIP: ip("192.0.2.7")}, 3, 0},
		{"scoped no rcpt", "x@partner.ours.example", Scope{ClientIP: ip("192.0.2.7")}, 3, 0},
		{"scoped no client", "x@partner.ours.example", Scope{Recipients: []string{"a@ours.example"}}, 3, 0},
		{"scoped, recipients unknown yet", "x@partner.ours.example", Scope{ClientIP: ip("192.0.2.7"), RecipientsUnknown: true}, 3, 8},
		{"scoped, recipients unknown, client out", "x@partner.ours.example", Scope{ClientIP: ip("198.51.100.1"), RecipientsUnknown: true}, 3, 0},
		{"rcpt only, recipients unknown", "boss@ours.example", Scope{RecipientsUnknown: true}, 2, 9},
		{"rcpt only in", "boss@ours.example", Scope{Recipients: []string{"ceo@ours.example"}}, 2, 9},
		{"rcpt only out", "boss@ours.example", Scope{Recipients: []string{"cfo@ours.example"}}, 2, 0},
		{"client ipv6 in", "x@scam.example", Scope{ClientIP: ip("2001:db8::25")}, 5, 15},
		{"client exact host in", "x@scam.example", Scope{ClientHost: "mx.relay.example"}, 5, 15},
		{"client exact host out", "x@scam.example", Scope{ClientHost: "a.mx.relay.example"}, 5, 0},
		{"no rule", "someone@elsewhere.example", Scope{}, 0, 0},
		{"empty", "", Scope{}, 0, 0},
		{"meta key", metaKey, Scope{}, 0, 0},
	}
	for mode, s := range openBoth(t, lookupRules) {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				m, err := s.Lookup(tt.addr, tt.sc)
				if err != nil {
					t.Fatalf("Lookup(%q) error %v", tt.addr, err)
				}
				if line(m.Block) != tt.block || line(m.Except) != tt.except {
					t.Errorf("Lookup(%q) = block line %d, except line %d; want %d, %d", tt.addr, line(m.Block), line(m.Except), tt.block, tt.except)
				}
				if blocked := tt.block != 0 && tt.except == 0; m.Blocked() != blocked {
					t.Errorf("Lookup(%q).Blocked() = %v; want %v", tt.addr, m.Blocked(), blocked)
				}
			})
		}
	}
}

func line(r *Rule) int {
	if r == nil {
		return 0
	}
	return r.Line
}

// TestLookupRule checks the whole Rule a lookup returns, decoded from each kind of Set.
func TestLookupRule(t *testing.T) {
	for mode, s := range openBoth(t, lookupRules) {
		m, err := s.Lookup("x@partner.ours.example", Scope{Recipients: []string{"a@ours.example"}, ClientHost: "mx.partner.example"})
		file := s.file
		wantBlock := &Rule{File: file, Line: 3, Entry: ".ours.example", Key: ".ours.example", Reason: "forged sub"}
		wantExcept := &Rule{File: file, Line: 8, Entry: "!@partner.ours.example", Key: "@partner.ours.example", Except: true,
			Rcpts: []string{"@ours.example", ".ours.example"}, Clients: []string{"192.0.2.0/24", ".partner.example"}, Reason: "partner relay"}
		if err != nil || !reflect.DeepEqual(m.Block, wantBlock) || !reflect.DeepEqual(m.Except, wantExcept) {
			t.Errorf("%s: Lookup = %#v, %#v, %v; want %#v, %#v", mode, m.Block, m.Except, err, wantBlock, wantExcept)
		}
		if !strings.HasSuffix(file, "badsenders") {
			t.Errorf("%s: file = %q; want the source name", mode, file)
		}
	}
}

func TestLookupClosed(t *testing.T) {
	for mode, s := range openBoth(t, "@a.example\n") {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Lookup("x@a.example", Scope{}); err != errClosed {
			t.Errorf("%s: Lookup after Close = %v; want %v", mode, err, errClosed)
		}
	}
}

func TestProbes(t *testing.T) {
	tests := []struct {
		addr string
		want []string
	}{
		{"u@a.b.c.example", []string{"u@a.b.c.example", "@a.b.c.example", ".b.c.example", ".c.example", ".example"}},
		{"u@example", []string{"u@example", "@example"}},
		{"@a.example", []string{"@a.example", ".example"}},
		{"a@b@c.example", []string{"a@b@c.example", "@c.example", ".example"}},
		{"u@[192.0.2.1]", []string{"u@[192.0.2.1]", "@[192.0.2.1]"}},
		{"unqualified", []string{"unqualified"}},
		{"u@", []string{"u@", "@"}},
	}
	for _, tt := range tests {
		got := Probes(nil, tt.addr)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Probes(%q) = %q; want %q", tt.addr, got, tt.want)
		}
		for _, p := range tt.want {
			if !patternMatches([]byte(p), tt.addr) {
				t.Errorf("patternMatches(%q, %q) = false; want true", p, tt.addr)
			}
		}
	}
	for _, p := range []string{".a.example", "@b.example", "u@example", ".u@example", "example"} {
		if patternMatches([]byte(p), "u@a.example") {
			t.Errorf("patternMatches(%q, %q) = true; want false", p, "u@a.example")
		}
	}
}

func TestCanonicalLookup(t *testing.T) {
	// Entries written in any form match candidates canonicalised by package address.
	text := "Phisher@Scam.Example\n@BÜCHER.example.\n@xn--caf-dma.example\n\"Mr X\"@Q.example\n"
	for mode, s := range openBoth(t, text) {
		for _, addr := range []string{"phisher@scam.example", "x@xn--bcher-kva.example", "y@xn--caf-dma.example", "mr x@q.example"} {
			m, err := s.Lookup(addr, Scope{})
			if err != nil || !m.Blocked() {
				t.Errorf("%s: Lookup(%q) = %+v, %v; want blocked", mode, addr, m, err)
			}
		}
	}
}

func TestValueEncoding(t *testing.T) {
	r := Rule{Line: 300, Entry: "!a@b", Key: "a@b", Except: true, Rcpts: []string{"@c"}, Clients: []string{"10.0.0.0/8", ".h"}, Reason: "why"}
	got := appendValue(nil, &r)
	want := []byte("\x01\x01\xac\x02\x04!a@b\x01\x02@c\x02\x0a10.0.0.0/8\x02.h\x03why")
	if !bytes.Equal(got, want) {
		t.Fatalf("appendValue = %q; want %q", got, want)
	}
	back, err := decodeRule([]byte("a@b"), got, "f")
	r.File = "f"
	if err != nil || !reflect.DeepEqual(*back, r) {
		t.Errorf("decodeRule = %#v, %v; want %#v", back, err, r)
	}
	for _, bad := range []string{"", "\x01", "\x02\x00\x01\x00\x00\x00\x00", "\x01\x02\x01\x00\x00\x00\x00", "\x01\x00\x00\x00\x00\x00\x00",
		"\x01\x00\x01\x00\x00\x00\x00\x00", "\x01\x00\x01\x05ab", "\x01\x00\x01\x00\xff\xff\xff\xff\x0f", "\x01\x00\x01\x00\x00\x00"} {
		if _, err := decodeRule([]byte("k"), []byte(bad), "f"); !errors.Is(err, cdb.ErrCorrupt) {
			t.Errorf("decodeRule(%q) error = %v; want ErrCorrupt", bad, err)
		}
	}
}

// TestCompileFixture compiles the corpus rules and checks every record of the CDB.
func TestCompileFixture(t *testing.T) {
	text, err := os.ReadFile("testdata/badsenders")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "badsenders")
	writeFile(t, src, string(text))
	rep, err := Compile(src, src+".cdb")
	if err != nil || rep.Entries != 7 || len(rep.Version) != 12 || len(rep.Warnings) != 0 {
		t.Fatalf("Compile = %+v, %v; want 7 entries, a version, no warnings", rep, err)
	}
	r, err := cdb.Open(src + ".cdb")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var keys []string
	err = r.ForEach(func(k, v []byte) error {
		keys = append(keys, string(k))
		if string(k) == metaKey {
			m, err := parseMeta(v)
			if err != nil || m.file != src || m.version != rep.Version || m.deps != nil || v[0] != 2 {
				t.Errorf("meta record = %q: %+v, %v", v, m, err)
			}
			return nil
		}
		_, err := decodeRule(k, v, "")
		return err
	})
	want := []string{"@acme-corp.example", ".acme-corp.example", "alerts@acme-corp.example", "phisher@scam.example",
		"@junk.example", ".junk.example", "@xn--acm-corp-d1a.example", metaKey}
	if err != nil || !slices.Equal(keys, want) {
		t.Errorf("records = %q, %v; want %q", keys, err, want)
	}
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestCompileAtomic(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "badsenders")
	dst := src + ".cdb"
	writeFile(t, src, "@a.example\n")
	if err := os.Chmod(src, 0o640); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 9, 1, 12, 0, 0, 123456789, time.UTC)
	if err := os.Chtimes(src, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if rep, err := Compile(src, dst); rep.Entries != 1 || err != nil {
		t.Fatalf("Compile = %+v, %v", rep, err)
	}
	fi, err := os.Stat(dst)
	if err != nil || !fi.ModTime().Equal(mtime) || fi.Mode().Perm() != 0o640 {
		t.Errorf("compiled CDB: %v, mtime %v, mode %v; want mtime %v, mode 0640", err, fi.ModTime(), fi.Mode(), mtime)
	}
	old, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"badsenders", "badsenders.cdb"}

	writeFile(t, src, "@a.example\n@b.example\nbroken line\n")
	rep, err := Compile(src, dst)
	var se *SyntaxError
	if rep.Entries != 0 || !errors.As(err, &se) || err.Error() != src+`:3: bad entry "broken": want user@host, @host or .host` {
		t.Errorf("Compile(broken) = %+v, %v; want a syntax error on line 3", rep, err)
	}
	if now, _ := os.ReadFile(dst); !bytes.Equal(now, old) {
		t.Errorf("Compile(broken) changed the CDB")
	}
	if names := listDir(t, dir); !slices.Equal(names, wantNames) {
		t.Errorf("after a syntax error the directory holds %q; want %q", names, wantNames)
	}

	// A source that is missing, or a directory, fails before anything is written.
	for _, bad := range []string{filepath.Join(dir, "missing"), dir} {
		if _, err := Compile(bad, dst); err == nil {
			t.Errorf("Compile(%q) succeeded", bad)
		}
	}
	// A rename that fails (dst is a directory) leaves no temporary file.
	writeFile(t, src, "@a.example\n")
	dstDir := filepath.Join(dir, "d.cdb")
	if err := os.MkdirAll(filepath.Join(dstDir, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(src, dstDir); err == nil {
		t.Errorf("Compile over a directory succeeded")
	}
	if names := listDir(t, dir); !slices.Equal(names, []string{"badsenders", "badsenders.cdb", "d.cdb"}) {
		t.Errorf("after a failed rename the directory holds %q", names)
	}
}

// stale makes the text newer than its CDB.
func stale(t *testing.T, src string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(src+".cdb", old, old); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	blocked := func(t *testing.T, s *Set, addr string, want bool) {
		t.Helper()
		m, err := s.Lookup(addr, Scope{})
		if err != nil || m.Blocked() != want {
			t.Errorf("Lookup(%q) = %+v, %v; want blocked %v", addr, m, err, want)
		}
	}
	t.Run("missing cdb is compiled", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "badsenders")
		writeFile(t, src, "@a.example\n@b.example\n")
		s, info, err := Load(src)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if want := (LoadInfo{Source: src + ".cdb", Version: s.Version(), Compiled: true, Entries: 2}); info != want || len(s.Version()) != 12 {
			t.Errorf("info = %+v; want %+v", info, want)
		}
		blocked(t, s, "x@b.example", true)
	})
	t.Run("fresh cdb is used", func(t *testing.T) {
		src := compiledList(t, "@a.example\n")
		// Change the text but keep its time: Load must trust the CDB, not reparse.
		mt, _ := os.Stat(src)
		writeFile(t, src, "@b.example\n")
		os.Chtimes(src, mt.ModTime(), mt.ModTime())
		s, info, err := Load(src)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if want := (LoadInfo{Source: src + ".cdb", Version: s.Version()}); info != want || len(s.Version()) != 12 {
			t.Errorf("info = %+v; want %+v", info, want)
		}
		blocked(t, s, "x@a.example", true)
		blocked(t, s, "x@b.example", false)
	})
	t.Run("stale cdb is recompiled", func(t *testing.T) {
		src := compiledList(t, "@a.example\n")
		writeFile(t, src, "@b.example\n")
		stale(t, src)
		s, info, err := Load(src)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if want := (LoadInfo{Source: src + ".cdb", Version: s.Version(), Compiled: true, Entries: 1}); info != want || len(s.Version()) != 12 {
			t.Errorf("info = %+v; want %+v", info, want)
		}
		blocked(t, s, "x@a.example", false)
		blocked(t, s, "x@b.example", true)
	})
	t.Run("missing text uses cdb", func(t *testing.T) {
		src := compiledList(t, "@a.example\n")
		os.Remove(src)
		s, info, err := Load(src)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if want := (LoadInfo{Source: src + ".cdb", Version: s.Version()}); info != want || len(s.Version()) != 12 {
			t.Errorf("info = %+v; want %+v", info, want)
		}
		blocked(t, s, "x@a.example", true)
	})
	t.Run("cdb path", func(t *testing.T) {
		src := compiledList(t, "@a.example\n")
		writeFile(t, src, "@b.example\n")
		stale(t, src)
		s, info, err := Load(src + ".cdb")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if want := (LoadInfo{Source: src + ".cdb", Version: s.Version()}); info != want || len(s.Version()) != 12 {
			t.Errorf("info = %+v; want %+v", info, want)
		}
		blocked(t, s, "x@a.example", true)
	})
	t.Run("both missing", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "badsenders")
		_, _, err := Load(src)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load = %v; want fs.ErrNotExist", err)
		}
		if _, _, err := Load(src + ".cdb"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(.cdb) = %v; want fs.ErrNotExist", err)
		}
	})
	t.Run("syntax error in text without cdb", func(t *testing.T) {
		src := filepath.Join(t.TempDir(), "badsenders")
		writeFile(t, src, "@\n@b.example\nfoo\n")
		_, _, err := Load(src)
		var list *ErrorList
		if !errors.As(err, &list) || len(list.Errors) != 2 || list.Errors[0].Line != 1 || list.Errors[1].Line != 3 {
			t.Errorf("Load = %v; want the errors of lines 1 and 3", err)
		}
		if _, err := os.Stat(src + ".cdb"); err == nil {
			t.Errorf("Load wrote a CDB for a text with errors")
		}
	})
	t.Run("corrupt cdb", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "badsenders")
		writeFile(t, src, "@a.example\n")
		old := time.Now().Add(-time.Hour)
		os.Chtimes(src, old, old)
		// Garbage, a truncated file, and a valid CDB that is not a rules file.
		var plain bytes.Buffer
		plainFile := filepath.Join(dir, "plain")
		f, _ := os.Create(plainFile)
		w, _ := cdb.NewWriter(f)
		w.Add([]byte("@a.example"), []byte("x"))
		w.Finish()
		f.Close()
		b, _ := os.ReadFile(plainFile)
		plain.Write(b)
		badMeta := bytes.Replace(plain.Bytes(), []byte("@a.example"), []byte("\x00bfs\x09\x09\x09\x09\x09\x09"), 1)
		for name, content := range map[string][]byte{
			"garbage":   bytes.Repeat([]byte{0xff}, 4096),
			"truncated": make([]byte, 100),
			"no meta":   plain.Bytes(),
			"bad meta":  badMeta,
		} {
			writeFile(t, src+".cdb", string(content))
			_, _, err := Load(src)
			if !errors.Is(err, cdb.ErrCorrupt) {
				t.Errorf("%s: Load = %v; want cdb.ErrCorrupt", name, err)
			}
		}
	})
	t.Run("directories", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "badsenders")
		os.Mkdir(src, 0o755)
		if _, _, err := Load(src); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Load(directory) = %v; want not a regular file", err)
		}
		src2 := filepath.Join(dir, "other")
		writeFile(t, src2, "@a.example\n")
		os.Mkdir(src2+".cdb", 0o755)
		if _, _, err := Load(src2); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Load(cdb directory) = %v; want not a regular file", err)
		}
	})
}

// TestLoadNotWritable simulates, through the hook, every error that makes Load fall back
// to memory, and one that must not (TestLoadReadOnlyDir does it for real).
func TestLoadNotWritable(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EACCES, syscall.EPERM, syscall.EROFS, syscall.ENOSPC} {
		t.Run(errno.Error(), func(t *testing.T) {
			testOnlyCreateTemp = func(dir, pattern string) (*os.File, error) {
				return nil, &fs.PathError{Op: "open", Path: filepath.Join(dir, pattern), Err: errno}
			}
			defer func() { testOnlyCreateTemp = os.CreateTemp }()
			dir := t.TempDir()
			src := filepath.Join(dir, "my rules")
			writeFile(t, src, "@a.example\n!b@a.example\n")
			s, info, err := Load(src)
			if errno == syscall.ENOSPC {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Errorf("Load = %v; want ENOSPC", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			want := LoadInfo{Source: src, Version: s.Version(), InMemory: true, Entries: 2, Command: "block-forged-sender compile '" + src + "'", Err: info.Err}
			if info != want || !errors.Is(info.Err, errno) {
				t.Errorf("info = %+v; want %+v", info, want)
			}
			if m, err := s.Lookup("x@a.example", Scope{}); err != nil || !m.Blocked() || m.Block.File != src {
				t.Errorf("Lookup = %+v, %v", m, err)
			}
			if names := listDir(t, dir); !slices.Equal(names, []string{"my rules"}) {
				t.Errorf("directory holds %q", names)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/var/qmail/control/badsenders": "/var/qmail/control/badsenders",
		"a b":                           "'a b'",
		"it's":                          `'it'\''s'`,
		"":                              "''",
		"$(x)":                          "'$(x)'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestConcurrentLoad(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "badsenders")
	var text strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&text, "@d%d.example\n", i)
	}
	writeFile(t, src, text.String())
	for round := range 5 {
		if round > 0 {
			stale(t, src)
		}
		errs := make(chan error, 8)
		for range 8 {
			go func() {
				s, _, err := Load(src)
				if err == nil {
					var m Match
					m, err = s.Lookup("x@d19999.example", Scope{})
					if err == nil && !m.Blocked() {
						err = errors.New("not blocked")
					}
					s.Close()
				}
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}
	}
	if names := listDir(t, dir); !slices.Equal(names, []string{"badsenders", "badsenders.cdb"}) {
		t.Errorf("directory holds %q", names)
	}
}

// TestCompileChangedWhileRead: a text that grows while it is compiled (an editor writing it
// in place) gives ErrChanged and leaves no CDB, so no half-written list is ever used.
func TestCompileChangedWhileRead(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "badsenders")
	var b strings.Builder
	for i := range 200000 {
		fmt.Fprintf(&b, "u%d@x%d.example\n", i, i)
	}
	if err := os.WriteFile(src, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // append while Compile reads
		defer close(done)
		f, err := os.OpenFile(src, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			fmt.Fprintf(f, "late%d@y.example\n", i)
		}
	}()
	var err error
	for try := 0; try < 20 && !errors.Is(err, ErrChanged); try++ {
		os.Remove(src + ".cdb") // an earlier try may have finished before the writer began
		_, err = Compile(src, src+".cdb")
	}
	close(stop)
	<-done
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("Compile of a file growing under it = %v, want ErrChanged", err)
	}
	if _, err := os.Stat(src + ".cdb"); err == nil {
		t.Errorf("a CDB was written from a text that changed while read")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}
