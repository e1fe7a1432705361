package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadSnippet(t *testing.T) {
	md := "# x\n\n<!-- snippet a -->\n\n    line 1\n      indented\n\n    line 3\n\nprose\n\n    not part of it\n<!-- snippet empty -->\nprose\n"
	file := filepath.Join(t.TempDir(), "x.md")
	if err := os.WriteFile(file, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSnippet(file, "a")
	if want := "line 1\n  indented\n\nline 3\n"; err != nil || got != want {
		t.Errorf("ReadSnippet(a) = %q, %v; want %q", got, err, want)
	}
	if _, err := ReadSnippet(file, "missing"); err == nil {
		t.Error("ReadSnippet(missing) gave no error")
	}
	if _, err := ReadSnippet(file, "empty"); err == nil {
		t.Error("ReadSnippet(empty) gave no error")
	}
}
