package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"block-forged-sender/internal/cdb"
)

// testOnlyCreateTemp creates Compile's temporary file; tests replace it to simulate a
// directory the process may not write to.
var testOnlyCreateTemp = os.CreateTemp

// createTempError is returned by Compile when it cannot create its temporary file.
type createTempError struct{ err error }

func (e *createTempError) Error() string { return e.err.Error() }
func (e *createTempError) Unwrap() error { return e.err }

// notWritable reports whether err says Compile could not create its temporary file
// because the directory is not writable by this process (permissions, a read-only file
// system): the case in which [Load] falls back to reading the text into memory.
func notWritable(err error) bool {
	var ce *createTempError
	return errors.As(err, &ce) &&
		(errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EROFS))
}

// Compile compiles the rules file src into the CDB dst and returns the number of entries.
//
// It is atomic: it writes a temporary file dst.tmp.RANDOM in dst's directory, record by
// record as it parses src, and on any error (a syntax error included) removes it and
// leaves dst as it was. On success it syncs the file, gives it src's permission bits and
// src's modification time as read before parsing (so that src edited during the compile
// is newer than dst and is compiled again by the next [Load]), renames it over dst and
// syncs the directory. Processes compiling the same file at once each write their own
// temporary file, and the last rename wins with a complete CDB.
func Compile(src, dst string) (n int, err error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, fmt.Errorf("rules: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, fmt.Errorf("rules: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("rules: %s: not a regular file", src)
	}
	dir := filepath.Dir(dst)
	tmp, err := testOnlyCreateTemp(dir, filepath.Base(dst)+".tmp.*")
	if err != nil {
		return 0, &createTempError{fmt.Errorf("rules: create temporary file: %w", err)}
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w, err := cdb.NewWriter(tmp)
	if err != nil {
		return 0, fmt.Errorf("rules: %s: %w", tmp.Name(), err)
	}
	if err := w.Add([]byte(metaKey), appendMeta(nil, src)); err != nil {
		return 0, fmt.Errorf("rules: %s: %w", tmp.Name(), err)
	}
	var key, val []byte
	err = scan(in, src, func(l *parsed) error {
		n++
		if l.isFast {
			val = appendFastValue(val[:0], &l.fast, l.line)
			return w.Add(l.fast.key, val)
		}
		key = append(key[:0], l.rule.Key...)
		val = appendValue(val[:0], &l.rule)
		return w.Add(key, val)
	})
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			return 0, err
		}
		return 0, fmt.Errorf("rules: compile %s: %w", src, err)
	}
	if err := unchanged(in, fi); err != nil {
		return 0, err
	}
	if err := w.Finish(); err != nil {
		return 0, fmt.Errorf("rules: %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(fi.Mode().Perm() & 0o666); err != nil {
		return 0, fmt.Errorf("rules: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("rules: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("rules: %w", err)
	}
	if err := os.Chtimes(tmp.Name(), fi.ModTime(), fi.ModTime()); err != nil {
		return 0, fmt.Errorf("rules: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return 0, fmt.Errorf("rules: %w", err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return n, fmt.Errorf("rules: sync directory %s: %w", dir, err)
	}
	return n, nil
}

// ErrChanged is returned when the rules text changed while it was read: an editor that
// rewrites the file in place may have been half-way through it. Compiling again later
// reads the finished text; a filter meanwhile fails temporarily.
var ErrChanged = errors.New("rules: the text changed while it was read")

// unchanged checks that the open file f still has the size and modification time it had
// (before) when reading began.
func unchanged(f *os.File, before os.FileInfo) error {
	now, err := f.Stat()
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	if now.Size() != before.Size() || !now.ModTime().Equal(before.ModTime()) {
		return fmt.Errorf("%w: %s", ErrChanged, f.Name())
	}
	return nil
}

// syncDir makes a rename in dir durable. File systems that cannot sync a directory
// (EINVAL) are not an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
