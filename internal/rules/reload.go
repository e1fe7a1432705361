package rules

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Reloader holds the rules a long-running program (the milter daemon) judges with, and
// loads them again when the text or its CDB changes. A list is swapped in only once it is
// fully loaded: a list that fails to load leaves the one in use, and the same files are
// not tried again until they change (or a forced reload). It is safe for concurrent use.
type Reloader struct {
	path string

	mu      sync.RWMutex // held for reading while a decision uses set
	set     *Set
	info    LoadInfo
	stamp   string    // the files' identities when set was loaded
	failed  string    // the files' identities when a reload last failed: not retried
	checked time.Time // when the files were last compared
}

// ReloadEvery is how often [Reloader.MaybeReload] compares the files at most.
const ReloadEvery = time.Second

// NewReloader loads the rules at path (as [Load] does); an error leaves nothing running.
func NewReloader(path string) (*Reloader, error) {
	r := &Reloader{path: path}
	if _, err := r.Reload(true); err != nil {
		return nil, err
	}
	return r, nil
}

// Acquire returns the list in use and the function that releases it: a decision holds it
// from its first to its last look-up, so a reload never closes a list under it.
func (r *Reloader) Acquire() (*Set, func()) {
	r.mu.RLock()
	return r.set, r.mu.RUnlock
}

// Info returns how the list in use was loaded.
func (r *Reloader) Info() LoadInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.info
}

// Reloaded says what a reload did, for the caller's log.
type Reloaded struct {
	Done bool     // a new list is in use
	Info LoadInfo // how it was loaded
}

// Reload loads the list again when forced or when the files changed since the last load
// or failed attempt. On failure the list in use stays and the error is returned.
func (r *Reloader) Reload(force bool) (Reloaded, error) {
	stamp := r.filesStamp()
	r.mu.RLock()
	skip := r.set != nil && (stamp == r.stamp || stamp == r.failed)
	r.mu.RUnlock()
	if skip && !force {
		return Reloaded{}, nil
	}
	set, info, err := Load(r.path)
	if err != nil {
		r.mu.Lock()
		r.failed = stamp
		r.mu.Unlock()
		return Reloaded{}, err
	}
	r.mu.Lock()
	old := r.set
	r.set, r.info, r.stamp, r.failed = set, info, r.filesStamp(), ""
	r.mu.Unlock()
	if old != nil {
		old.Close() // no decision holds it: they hold mu for reading
	}
	return Reloaded{Done: true, Info: info}, nil
}

// MaybeReload is [Reloader.Reload] without force, at most once every [ReloadEvery]; it
// does nothing (and returns the zero Reloaded) between.
func (r *Reloader) MaybeReload() (Reloaded, error) {
	r.mu.Lock()
	due := time.Since(r.checked) >= ReloadEvery
	if due {
		r.checked = time.Now()
	}
	r.mu.Unlock()
	if !due {
		return Reloaded{}, nil
	}
	return r.Reload(false)
}

// Close closes the list in use.
func (r *Reloader) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set != nil {
		r.set.Close()
		r.set = nil
	}
}

// filesStamp identifies the rules files as they are now: a change to either (an edit, a
// new CDB renamed into place) changes it.
func (r *Reloader) filesStamp() string {
	var b strings.Builder
	for _, p := range []string{r.path, r.path + ".cdb"} {
		if fi, err := os.Stat(p); err == nil {
			var ino uint64
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				ino = uint64(st.Ino)
			}
			fmt.Fprintf(&b, "%d/%d/%d;", ino, fi.Size(), fi.ModTime().UnixNano())
		} else {
			b.WriteString("-;")
		}
	}
	return b.String()
}
