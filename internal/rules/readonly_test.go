package rules

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"block-forged-sender/internal/testenv"
)

// TestLoadReadOnly: LoadReadOnly reads what Load would use, and where Load would compile
// it reads the text instead, leaving the directory as it was, in a directory this process
// may write (as root: the case that check must not write in).
func TestLoadReadOnly(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T) string // returns the path to load
		want    func(src string) LoadInfo
		blocked string // an address the loaded rules block
		passed  string // one they do not
	}{
		{"missing cdb: the text", func(t *testing.T) string {
			src := filepath.Join(t.TempDir(), "badsenders")
			writeFile(t, src, "@a.example\n@b.example\n")
			return src
		}, func(src string) LoadInfo {
			return LoadInfo{Source: src, InMemory: true, Entries: 2, Command: "block-forged-sender compile " + src, Err: errNotCompiled}
		}, "x@b.example", "x@c.example"},
		{"stale cdb: the text, not the cdb", func(t *testing.T) string {
			src := compiledList(t, "@a.example\n")
			writeFile(t, src, "@b.example\n")
			stale(t, src)
			return src
		}, func(src string) LoadInfo {
			return LoadInfo{Source: src, InMemory: true, Stale: true, Entries: 1, Command: "block-forged-sender compile " + src, Err: errNotCompiled}
		}, "x@b.example", "x@a.example"},
		{"fresh cdb: the cdb", func(t *testing.T) string {
			src := compiledList(t, "@a.example\n")
			mt, _ := os.Stat(src)
			writeFile(t, src, "@b.example\n")
			os.Chtimes(src, mt.ModTime(), mt.ModTime())
			return src
		}, func(src string) LoadInfo { return LoadInfo{Source: src + ".cdb"} }, "x@a.example", "x@b.example"},
		{"missing text: the cdb", func(t *testing.T) string {
			src := compiledList(t, "@a.example\n")
			os.Remove(src)
			return src
		}, func(src string) LoadInfo { return LoadInfo{Source: src + ".cdb"} }, "x@a.example", "x@b.example"},
		{"cdb path: the cdb, stale or not", func(t *testing.T) string {
			src := compiledList(t, "@a.example\n")
			writeFile(t, src, "@b.example\n")
			stale(t, src)
			return src + ".cdb"
		}, func(src string) LoadInfo { return LoadInfo{Source: src} }, "x@a.example", "x@b.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.setup(t)
			before := testenv.DirState(t, filepath.Dir(src))
			s, info, err := LoadReadOnly(src)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if info.Version == "" || info.Version != s.Version() {
				t.Errorf("info.Version = %q, the set's %q: want the same, not empty", info.Version, s.Version())
			}
			info.Version = ""
			if want := tt.want(src); info != want {
				t.Errorf("info = %+v; want %+v", info, want)
			}
			if m, err := s.Lookup(tt.blocked, Scope{}); err != nil || !m.Blocked() {
				t.Errorf("Lookup(%q) = %+v, %v; want blocked", tt.blocked, m, err)
			}
			if m, err := s.Lookup(tt.passed, Scope{}); err != nil || m.Blocked() {
				t.Errorf("Lookup(%q) = %+v, %v; want not blocked", tt.passed, m, err)
			}
			if after := testenv.DirState(t, filepath.Dir(src)); !maps.Equal(before, after) {
				t.Errorf("LoadReadOnly changed the directory:\nbefore %q\nafter  %q", before, after)
			}
		})
	}

	t.Run("errors are Load's", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "badsenders")
		if _, _, err := LoadReadOnly(src); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("both missing: %v; want fs.ErrNotExist", err)
		}
		writeFile(t, src, "@a.example\nnot an entry\n")
		var se *SyntaxError
		if _, _, err := LoadReadOnly(src); !errors.As(err, &se) || se.Line != 2 {
			t.Errorf("syntax error: %v; want line 2", err)
		}
		if names := listDir(t, dir); len(names) != 1 {
			t.Errorf("a failed read-only load left %q", names)
		}
		os.Mkdir(src+".cdb", 0o755)
		if _, _, err := LoadReadOnly(src); err == nil {
			t.Errorf("a directory for the cdb: no error")
		}
	})
}
