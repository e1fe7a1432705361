package rules

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"block-forged-sender/internal/cdb"
)

var versionForm = regexp.MustCompile(`^[0-9a-f]{12}$`)

// TestVersion: the version depends on the list only, not on where or when it was
// compiled, and the CDB and the in-memory rules agree on it.
func TestVersion(t *testing.T) {
	text := "@a.example  why\n!b@a.example rcpt=@c.example\n\"q r\"@d.example\n@bücher.example\n"
	var versions []string
	for i, name := range []string{"badsenders", "other name"} {
		src := filepath.Join(t.TempDir(), name)
		writeFile(t, src, text)
		when := time.Date(2020+i, 1, 1, 0, 0, 0, 0, time.UTC)
		os.Chtimes(src, when, when)
		rep, err := Compile(src, src+".cdb")
		if err != nil {
			t.Fatal(err)
		}
		fromFile, err := CDBVersion(src + ".cdb")
		if err != nil || fromFile != rep.Version {
			t.Errorf("CDBVersion = %q, %v; want %q", fromFile, err, rep.Version)
		}
		s, info, err := Load(src)
		if err != nil || s.Version() != rep.Version || info.Version != rep.Version {
			t.Errorf("Load: version %q, info %+v, %v; want %q", s.Version(), info, err, rep.Version)
		}
		s.Close()
		m, mrep, err := LoadText(src)
		if err != nil || m.Version() != rep.Version || mrep.Version != rep.Version {
			t.Errorf("LoadText: version %q, %+v, %v; want %q", m.Version(), mrep, err, rep.Version)
		}
		m.Close()
		versions = append(versions, rep.Version)
	}
	if !versionForm.MatchString(versions[0]) || versions[0] != versions[1] {
		t.Errorf("versions %q: want the same 12 lowercase hex digits", versions)
	}
	// Any change to the list changes it: an entry, a reason, a line number, a scope.
	for _, changed := range []string{
		"@a.example  why not\n!b@a.example rcpt=@c.example\n\"q r\"@d.example\n@bücher.example\n",
		"\n@a.example  why\n!b@a.example rcpt=@c.example\n\"q r\"@d.example\n@bücher.example\n",
		"@a.example  why\n!b@a.example rcpt=@e.example\n\"q r\"@d.example\n@bücher.example\n",
		"@a.example  why\n!b@a.example rcpt=@c.example\n\"q r\"@d.example\n",
	} {
		src := compiledList(t, changed)
		if v, _ := CDBVersion(src + ".cdb"); v == versions[0] || !versionForm.MatchString(v) {
			t.Errorf("version of %q = %q; want another than %q", changed, v, versions[0])
		}
	}
	// Nor is it fooled by a list that spans several checksum chunks.
	var big strings.Builder
	for range 5000 {
		big.WriteString("@a-rather-long-host-name-to-fill-the-buffer.example  and a reason of some length\n")
	}
	_, rep := buildBoth(t, big.String())
	if !versionForm.MatchString(rep.Version) {
		t.Errorf("version %q", rep.Version)
	}
}

// TestVersionOfFormat1: a CDB written by an earlier version (meta format 1) still loads;
// its version is unknown.
func TestVersionOfFormat1(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "badsenders")
	writeFile(t, src, "@a.example\n")
	old := time.Now().Add(-time.Hour)
	os.Chtimes(src, old, old)
	f, err := os.Create(src + ".cdb")
	if err != nil {
		t.Fatal(err)
	}
	w, _ := cdb.NewWriter(f)
	w.Add([]byte(metaKey), append([]byte{1}, src...))
	r := Rule{Line: 1, Entry: "@a.example", Key: "@a.example"}
	w.Add([]byte(r.Key), appendValue(nil, &r))
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, info, err := Load(src)
	if err != nil || info.Compiled || s.Version() != "" || info.Version != "" {
		t.Fatalf("Load = %+v, %v; want the format-1 CDB with no version", info, err)
	}
	defer s.Close()
	if m, err := s.Lookup("x@a.example", Scope{}); err != nil || !m.Blocked() || m.Block.File != src {
		t.Errorf("Lookup = %+v, %v", m, err)
	}
	if v, err := CDBVersion(src + ".cdb"); v != "" || err != nil {
		t.Errorf("CDBVersion = %q, %v; want empty", v, err)
	}
}

func TestMetaFormat(t *testing.T) {
	sum := [8]byte{0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67}
	v := appendMeta(nil, "f", sum, []dep{{"/c/rcpthosts", "1:2:3"}, {"/c/morercpthosts.cdb", "-"}})
	want := "\x02\xde\xad\xbe\xef\x01\x23\x45\x67\x01f\x02\x0c/c/rcpthosts\x051:2:3\x14/c/morercpthosts.cdb\x01-"
	if string(v) != want {
		t.Fatalf("appendMeta = %q; want %q", v, want)
	}
	m, err := parseMeta(v)
	if err != nil || m.file != "f" || m.version != "deadbeef0123" || len(m.deps) != 2 || m.deps[1] != (dep{"/c/morercpthosts.cdb", "-"}) {
		t.Errorf("parseMeta = %+v, %v", m, err)
	}
	for _, bad := range []string{"", "\x03f", "\x02short", want + "x", want[:len(want)-1], "\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01f\x05"} {
		if _, err := parseMeta([]byte(bad)); !errors.Is(err, cdb.ErrCorrupt) {
			t.Errorf("parseMeta(%q) = %v; want ErrCorrupt", bad, err)
		}
	}
}

// TestLoadLastGood: a text that no longer compiles leaves the last good CDB in use, and
// says so; only a complete compiled list is such a CDB.
func TestLoadLastGood(t *testing.T) {
	src := compiledList(t, "@a.example\n")
	good, _ := os.ReadFile(src + ".cdb")
	version, _ := CDBVersion(src + ".cdb")
	writeFile(t, src, "@b.example\n*@c.example\n!@d.example clinet=10.0.0.1\n")
	stale(t, src)
	for range 2 { // and again: nothing is remembered, nothing written
		s, info, err := Load(src)
		if err != nil {
			t.Fatal(err)
		}
		var list *ErrorList
		if !info.LastGood || info.Source != src+".cdb" || info.Version != version || info.Compiled || info.InMemory ||
			info.Command != "block-forged-sender compile "+src || !errors.As(info.Err, &list) || len(list.Errors) != 2 {
			t.Errorf("Load = %+v; want the last good CDB and two errors", info)
		}
		if m, err := s.Lookup("x@a.example", Scope{}); err != nil || !m.Blocked() {
			t.Errorf("Lookup(x@a.example) = %+v, %v; want blocked by the last good list", m, err)
		}
		s.Close()
		if now, _ := os.ReadFile(src + ".cdb"); !bytes.Equal(now, good) {
			t.Errorf("Load changed the CDB")
		}
		if names := listDir(t, filepath.Dir(src)); strings.Join(names, " ") != "badsenders badsenders.cdb" {
			t.Errorf("directory holds %q", names)
		}
	}
	// Fixed: compiled, and in use.
	writeFile(t, src, "@b.example\n")
	s, info, err := Load(src)
	if err != nil || !info.Compiled || info.LastGood {
		t.Fatalf("Load after the fix = %+v, %v", info, err)
	}
	if m, _ := s.Lookup("x@b.example", Scope{}); !m.Blocked() {
		t.Errorf("the fixed list is not in use")
	}
	s.Close()

	// No CDB, a corrupt one, or one without its meta record (not a compiled list): the
	// compile error.
	for name, content := range map[string]string{"none": "", "garbage": strings.Repeat("\xff", 4096), "no meta": string(plainCDB(t))} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "badsenders")
			if content != "" {
				writeFile(t, src+".cdb", content)
			}
			writeFile(t, src, "*@c.example\n")
			if content != "" {
				stale(t, src)
			}
			_, _, err := Load(src)
			var list *ErrorList
			if !errors.As(err, &list) || list.Errors[0].Line != 1 {
				t.Errorf("Load = %v; want the syntax error", err)
			}
		})
	}
}

// TestLoadLastGoodReadOnly: where the CDB cannot be written and the text does not parse
// either, the last good CDB is used too.
func TestLoadLastGoodReadOnly(t *testing.T) {
	src := compiledList(t, "@a.example\n")
	writeFile(t, src, "@\n")
	stale(t, src)
	testOnlyCreateTemp = func(dir, pattern string) (*os.File, error) {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(dir, pattern), Err: syscall.EACCES}
	}
	defer func() { testOnlyCreateTemp = os.CreateTemp }()
	s, info, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var se *SyntaxError
	if !info.LastGood || info.InMemory || !errors.As(info.Err, &se) || se.Line != 1 {
		t.Errorf("Load = %+v; want the last good CDB and the syntax error", info)
	}
}

// plainCDB returns a CDB that is not a compiled rules file: it has no meta record.
func plainCDB(t *testing.T) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plain.cdb")
	f, _ := os.Create(p)
	w, _ := cdb.NewWriter(f)
	w.Add([]byte("@a.example"), []byte("x"))
	w.Finish()
	f.Close()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCompileAs: a text written to a temporary file compiles as the file it will replace:
// errors, rules and relative control directories name that file, and the version is the
// one its own compile gives.
func TestCompileAs(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "badsenders")
	writeFile(t, filepath.Join(dir, "rcpthosts"), "ours.example\n")
	tmp := filepath.Join(t.TempDir(), "rows.tmp") // elsewhere: control=. must still mean dir
	writeFile(t, tmp, ":rcpthosts control=.\n@b.example  why\n")
	rep, err := CompileAs(tmp, name, name+".cdb")
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := Load(name + ".cdb")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m, err := s.Lookup("x@ours.example", Scope{}); err != nil || !m.Blocked() || m.Block.File != name || m.Block.Line != 1 {
		t.Errorf("Lookup = %+v, %v; want blocked by %s:1", m.Block, err, name)
	}
	if s.Version() != rep.Version {
		t.Errorf("version %q; Report says %q", s.Version(), rep.Version)
	}
	writeFile(t, name, ":rcpthosts control=.\n@b.example  why\n")
	if own, err := Compile(name, filepath.Join(t.TempDir(), "own.cdb")); err != nil || own.Version != rep.Version {
		t.Errorf("Compile of the same text = %+v, %v; want version %s", own, err, rep.Version)
	}
	writeFile(t, tmp, "@b.example\nbad\n")
	if _, err := CompileAs(tmp, name, name+".cdb"); err == nil || err.Error() != name+`:2: bad entry "bad": want user@host, @host or .host` {
		t.Errorf("CompileAs(bad) = %v; want the error named by %s", err, name)
	}
}
