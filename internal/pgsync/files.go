package pgsync

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"block-forged-sender/internal/rules"
)

// A reader of the rules (the per-message program's rules.Load, the milter's reloader) uses
// FILE.cdb unless the text FILE is newer than it, in which case it compiles the text
// itself, or reads the text into memory where it cannot write the directory. A sync must
// therefore never leave, even for an instant, a text newer than its CDB: a reader would
// recompile (racing the sync) or parse a million lines per message. Compile gives a CDB
// exactly its text's modification time; a sync replaces the files in this order:
//
//  1. The new text goes to a temporary file beside FILE (.FILE.sync.RANDOM: a reader
//     never opens it), with the old text's permissions, and is synced to disk. Its
//     modification time is set to M: now, or the old files' if they are later (a clock
//     set back), in whole seconds.
//  2. The old CDB's modification time is set to M + 1 s. Readers still use it: the old
//     text is not newer. (A CDB of another user, whose time only its owner may set, is
//     first replaced by a copy of itself.)
//  3. The temporary text is renamed over FILE, and the directory synced. Readers now see
//     the new text (M) and the old CDB (M + 1 s): not newer, so they keep using the old
//     CDB, a complete list.
//  4. FILE is compiled to FILE.cdb (rules.Compile: a temporary file, sync, mtime M,
//     rename, directory sync). From here readers use the new CDB.
//
// A failure in step 4 (a full disk) leaves the new text with the old CDB, which readers
// keep using, its modification time one second ahead of the text's. That is how the next
// sync knows the files are not in step (see [same]): it replaces them again.

// same reports whether the files in place already hold text: the rules text is byte for
// byte text, and its CDB has exactly the text's modification time, which only a completed
// compile of that text gives it (a sync that failed after replacing the text leaves the
// CDB a second ahead; an edit of the text makes the text newer).
func same(rulesFile string, text []byte) bool {
	tfi, err := os.Stat(rulesFile)
	if err != nil || !tfi.Mode().IsRegular() || tfi.Size() != int64(len(text)) {
		return false
	}
	cfi, err := os.Stat(rulesFile + ".cdb")
	if err != nil || !cfi.Mode().IsRegular() || !cfi.ModTime().Equal(tfi.ModTime()) {
		return false
	}
	f, err := os.Open(rulesFile)
	if err != nil {
		return false
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	for len(text) > 0 {
		chunk, err := br.Peek(min(len(text), br.Size()))
		if err != nil || !bytes.Equal(chunk, text[:len(chunk)]) {
			return false
		}
		br.Discard(len(chunk))
		text = text[len(chunk):]
	}
	_, err = br.ReadByte()
	return err == io.EOF
}

// errStop ends a parse early.
var errStop = errors.New("stop")

// hasEntries reports whether the list in place has at least one entry: its text does, or
// it cannot be read as a list (then it is not known to be empty), or there is no text but
// a CDB.
func hasEntries(rulesFile string) bool {
	f, err := os.Open(rulesFile)
	if errors.Is(err, fs.ErrNotExist) {
		_, err := os.Stat(rulesFile + ".cdb")
		return err == nil
	}
	if err != nil {
		return true
	}
	defer f.Close()
	err = rules.Parse(f, rulesFile, func(rules.Rule) error { return errStop })
	return err != nil
}

// currentVersion returns the version of the list in place, "" when there is no CDB.
func currentVersion(rulesFile string) (string, error) {
	v, err := version(rulesFile + ".cdb")
	if err != nil {
		if _, serr := os.Stat(rulesFile + ".cdb"); errors.Is(serr, fs.ErrNotExist) {
			return "", nil
		}
	}
	return v, err
}

// CurrentVersion returns the rules version of the list in place at rulesFile (its CDB),
// "" when there is none yet.
func CurrentVersion(rulesFile string) (string, error) { return currentVersion(rulesFile) }

// replace makes text the rules text rulesFile and compiles its CDB, in the order
// explained at the top of this file. created says there was no text before.
func replace(rulesFile string, text []byte) (created bool, err error) {
	dir, base := filepath.Split(rulesFile)
	if dir == "" {
		dir = "."
	}
	perm := os.FileMode(0o644)
	m := time.Now()
	told, err := os.Stat(rulesFile)
	switch {
	case err == nil && !told.Mode().IsRegular():
		return false, fmt.Errorf("pgsync: %s: not a regular file", rulesFile)
	case err == nil:
		perm = told.Mode().Perm()
		m = later(m, told.ModTime())
	case errors.Is(err, fs.ErrNotExist):
		created = true
	default:
		return false, fmt.Errorf("pgsync: %w", err)
	}
	cdbPath := rulesFile + ".cdb"
	cold, err := os.Stat(cdbPath)
	haveCDB := err == nil
	if haveCDB {
		if !cold.Mode().IsRegular() {
			return false, fmt.Errorf("pgsync: %s: not a regular file", cdbPath)
		}
		m = later(m, cold.ModTime())
	}
	m = m.Truncate(time.Second)

	// 1. the new text, beside the old.
	tmp, err := os.CreateTemp(dir, "."+base+".sync.*")
	if err != nil {
		return false, fmt.Errorf("pgsync: %w", err)
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(text); err != nil {
		return false, fmt.Errorf("pgsync: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return false, fmt.Errorf("pgsync: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return false, fmt.Errorf("pgsync: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("pgsync: %w", err)
	}
	if err := os.Chtimes(tmp.Name(), m, m); err != nil {
		return false, fmt.Errorf("pgsync: %w", err)
	}
	// 2. the old CDB stays in use while the text is replaced.
	if haveCDB {
		if err := setAhead(cdbPath, cold, m.Add(time.Second)); err != nil {
			return false, err
		}
	}
	// 3. the text.
	if err := os.Rename(tmp.Name(), rulesFile); err != nil {
		return false, fmt.Errorf("pgsync: %w", err)
	}
	renamed = true
	if err := rules.SyncDir(dir); err != nil {
		return created, fmt.Errorf("pgsync: sync directory %s: %w", dir, err)
	}
	// 4. its CDB.
	if _, err := compile(rulesFile, cdbPath); err != nil {
		return created, err
	}
	return created, nil
}

// testOnlyChtimes sets a file's times; tests replace it to refuse, as for a file of
// another user.
var testOnlyChtimes = os.Chtimes

// setAhead gives the CDB at path the modification time t. Only its owner (or root) may
// set a time; a CDB of another user (compiled by root, say, before the sync ran as its own
// user) is replaced by a copy of itself with that time, which readers cannot tell from it.
func setAhead(path string, fi os.FileInfo, t time.Time) error {
	err := testOnlyChtimes(path, t, t)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		if err != nil {
			err = fmt.Errorf("pgsync: %w", err)
		}
		return err
	}
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("pgsync: %w", err)
	}
	defer in.Close()
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".sync.*")
	if err != nil {
		return fmt.Errorf("pgsync: %w", err)
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, in); err != nil {
		return fmt.Errorf("pgsync: copy %s: %w", path, err)
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		return fmt.Errorf("pgsync: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("pgsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pgsync: %w", err)
	}
	if err := os.Chtimes(tmp.Name(), t, t); err != nil {
		return fmt.Errorf("pgsync: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("pgsync: %w", err)
	}
	renamed = true
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
