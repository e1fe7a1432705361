package rules

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReloader: a changed text is loaded, a broken one leaves the list in use and is not
// tried again until it changes, a forced reload tries it anyway.
func TestReloader(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "badsenders")
	writeFile(t, src, "@a.example\n")
	r, err := NewReloader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	blocked := func(addr string) bool {
		t.Helper()
		s, release := r.Acquire()
		defer release()
		m, err := s.Lookup(addr, Scope{})
		if err != nil {
			t.Fatal(err)
		}
		return m.Blocked()
	}
	if !blocked("x@a.example") || blocked("x@b.example") {
		t.Fatal("first list not in use")
	}
	if got, err := r.Reload(false); err != nil || got.Done {
		t.Errorf("Reload of unchanged files = %+v, %v; want nothing done", got, err)
	}

	touch := func(text string) {
		t.Helper()
		tmp := src + ".new"
		writeFile(t, tmp, text)
		future := time.Now().Add(time.Duration(len(text)) * time.Second)
		if err := os.Chtimes(tmp, future, future); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, src); err != nil {
			t.Fatal(err)
		}
	}
	touch("@b.example\n")
	if got, err := r.Reload(false); err != nil || !got.Done || !got.Info.Compiled {
		t.Fatalf("Reload of a changed text = %+v, %v; want a new compiled list", got, err)
	}
	if blocked("x@a.example") || !blocked("x@b.example") {
		t.Error("new list not in use")
	}

	// A broken text: the last good CDB stays in use, and the reload says so.
	touch("@c.example\nnot an entry\n")
	if got, err := r.Reload(false); err != nil || !got.Done || !got.Info.LastGood || got.Info.Err == nil {
		t.Fatalf("Reload of a broken text = %+v, %v; want the last good list, with its error", got, err)
	}
	if !blocked("x@b.example") || blocked("x@c.example") {
		t.Error("the good list was dropped for a broken one")
	}
	if got, err := r.Reload(false); err != nil || got.Done {
		t.Errorf("the same broken files were tried again: %+v, %v", got, err)
	}
	if got, err := r.Reload(true); err != nil || !got.Info.LastGood {
		t.Errorf("a forced reload of the broken text = %+v, %v; want the last good list again", got, err)
	}
	// No CDB to fall back on: an error, and the list in use stays.
	if err := os.Remove(src + ".cdb"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reload(true); err == nil {
		t.Error("a broken text with no CDB reloaded without an error")
	}
	if !blocked("x@b.example") {
		t.Error("the list in use was dropped")
	}
}
