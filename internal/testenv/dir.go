package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// DirState is every entry of dir with its size, mode, modification time and content, and
// dir's own mode and modification time (as "."): equal states say that nothing in dir was
// written, created, removed or renamed.
func DirState(t testing.TB, dir string) map[string]string {
	t.Helper()
	state := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		state[e.Name()] = fmt.Sprintf("%d %v %d %q", fi.Size(), fi.Mode(), fi.ModTime().UnixNano(), b)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	state["."] = fmt.Sprintf("%v %d", fi.Mode(), fi.ModTime().UnixNano())
	return state
}
