package rules

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
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

// Compile compiles the rules file src into the CDB dst and says what it made of it.
//
// It reads the whole text and reports every malformed line at once, in an [*ErrorList]
// (errors.As finds the first [*SyntaxError] in it). It is atomic: it writes a temporary
// file dst.tmp.RANDOM in dst's directory, record by record as it parses src, and on any
// error (a malformed line included) removes it and leaves dst as it was. On success it
// syncs the file, gives it src's permission bits and src's modification time as read
// before parsing (so that src edited during the compile is newer than dst and is
// compiled again by the next [Load]), renames it over dst and syncs the directory.
// Processes compiling the same file at once each write their own temporary file, and the
// last rename wins with a complete CDB. The Report gives the entries, the rules version
// and the warnings (see the package documentation); warnings do not fail a compile.
func Compile(src, dst string) (Report, error) { return compile(src, src, dst) }

// CompileAs is [Compile] for a text written to src before it replaces name: errors,
// warnings and [Rule.File] name name, and a relative :rcpthosts control= directory is
// taken from name's directory. A program that writes the rules (from a database, say)
// writes src beside name, compiles it to name's CDB with CompileAs, then renames src over
// name.
func CompileAs(src, name, dst string) (Report, error) { return compile(src, name, dst) }

func compile(src, name, dst string) (rep Report, err error) {
	in, err := os.Open(src)
	if err != nil {
		return Report{}, fmt.Errorf("rules: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return Report{}, fmt.Errorf("rules: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Report{}, fmt.Errorf("rules: %s: not a regular file", src)
	}
	dir := filepath.Dir(dst)
	tmp, err := testOnlyCreateTemp(dir, filepath.Base(dst)+".tmp.*")
	if err != nil {
		return Report{}, &createTempError{fmt.Errorf("rules: create temporary file: %w", err)}
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
		return Report{}, fmt.Errorf("rules: %s: %w", tmp.Name(), err)
	}
	b := newBuilder(name, w.Add)
	// Read what the file held when it was opened, no more: a file that grows while it is
	// read (an editor, or a log given by mistake) ends the read, and unchanged refuses it.
	if err := scan(io.NewSectionReader(in, 0, fi.Size()), name, &b.errs, b.line); err != nil {
		return Report{}, fmt.Errorf("rules: compile %s: %w", name, err)
	}
	if !b.errs.empty() {
		return Report{}, &b.errs
	}
	if err := unchanged(in, fi); err != nil {
		return Report{}, err
	}
	if err := w.Add([]byte(metaKey), appendMeta(nil, name, b.sum.sum(), b.deps)); err != nil {
		return Report{}, fmt.Errorf("rules: %s: %w", tmp.Name(), err)
	}
	if err := w.Finish(); err != nil {
		return Report{}, fmt.Errorf("rules: %s: %w", tmp.Name(), err)
	}
	if size, err := tmp.Seek(0, io.SeekEnd); err != nil {
		return Report{}, fmt.Errorf("rules: %w", err)
	} else if r, err := cdb.NewReader(tmp, size); err != nil {
		return Report{}, fmt.Errorf("rules: %s: %w", tmp.Name(), err)
	} else if err := b.lint(cdbRecords{r}, io.NewSectionReader(in, 0, fi.Size())); err != nil {
		return Report{}, fmt.Errorf("rules: check %s: %w", name, err)
	}
	if err := tmp.Chmod(fi.Mode().Perm() & 0o666); err != nil {
		return Report{}, fmt.Errorf("rules: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return Report{}, fmt.Errorf("rules: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Report{}, fmt.Errorf("rules: %w", err)
	}
	if err := os.Chtimes(tmp.Name(), fi.ModTime(), fi.ModTime()); err != nil {
		return Report{}, fmt.Errorf("rules: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return Report{}, fmt.Errorf("rules: %w", err)
	}
	renamed = true
	rep = b.report()
	if err := SyncDir(dir); err != nil {
		return rep, fmt.Errorf("rules: sync directory %s: %w", dir, err)
	}
	return rep, nil
}

// builder turns the lines [scan] gives into records for a sink (a CDB writer, or the map
// of an in-memory Set), computing the rules version as it goes and keeping what [lint]
// needs. Once a line is malformed it only parses, to find the other mistakes.
type builder struct {
	file string // as given: in errors, warnings and Rule.File
	errs ErrorList
	sink func(key, val []byte) error
	sum  versionSum
	idx  *blockIndex
	excs []exception
	deps []dep

	hostLines        []int // the lines of :rcpthosts directives, in order
	entries, domains int

	reasons, hosts, dups, excWarn warnList

	key []byte
}

func newBuilder(file string, sink func(key, val []byte) error) *builder {
	return &builder{file: file, sink: sink, sum: newVersionSum(), idx: &blockIndex{seed: maphash.MakeSeed()}}
}

// line takes one entry line from scan.
func (b *builder) line(l *parsed) error {
	switch {
	case l.hosts != nil:
		b.hostLines = append(b.hostLines, l.line)
		deps, n, err := expandHosts(b.file, l, &b.errs, b.hosts.add, func(r *Rule) error { return b.rule(r) })
		b.deps = append(b.deps, deps...)
		b.domains += n
		if msg := reasonWarning([]byte(l.rule.Reason)); msg != "" {
			b.reasons.add(l.line, Warning{b.file, l.line, msg})
		}
		return err
	case !b.errs.empty():
		return nil
	case !l.isFast:
		if msg := reasonWarning([]byte(l.rule.Reason)); msg != "" {
			b.reasons.add(l.line, Warning{b.file, l.line, msg})
		}
		return b.rule(&l.rule)
	}
	f := &l.fast
	if len(f.reason) > replyMax { // a fast reason is ASCII
		b.reasons.add(l.line, Warning{b.file, l.line, reasonWarning(f.reason)})
	}
	if f.except {
		b.excs = append(b.excs, exception{entry: string(f.entry), key: string(f.key), line: l.line})
	} else {
		b.idx.add(f.key, l.line)
	}
	buf := b.sum.begin(f.key)
	buf = appendFastValue(buf, f, l.line)
	return b.add(f.key, b.sum.end(buf, f.key))
}

// rule takes one rule parsed in full, or given by a :rcpthosts line.
func (b *builder) rule(r *Rule) error {
	if !b.errs.empty() {
		return nil
	}
	b.key = append(b.key[:0], r.Key...)
	if r.Except {
		b.excs = append(b.excs, exception{entry: r.Entry, key: r.Key, line: r.Line, scopes: scopesKey(r)})
	} else {
		b.idx.add(b.key, r.Line)
	}
	buf := b.sum.begin(b.key)
	buf = appendValue(buf, r)
	return b.add(b.key, b.sum.end(buf, b.key))
}

// add hands a record, already in the version sum, to the sink.
func (b *builder) add(key, val []byte) error {
	b.entries++
	err := b.sink(key, val)
	b.sum.next()
	return err
}

// report returns the Report of a finished build.
func (b *builder) report() Report {
	ws, more := mergeWarnings(&b.reasons, &b.hosts, &b.dups, &b.excWarn)
	return Report{Entries: b.entries, Domains: b.domains, Version: versionString(b.sum.sum()), Warnings: ws, MoreWarnings: more}
}

// cdbRecords is a compiled CDB as the analysis asks it.
type cdbRecords struct{ r *cdb.Reader }

func (c cdbRecords) lookup(key string, fn func([]byte) bool) error {
	return c.r.Lookup([]byte(key), fn)
}

func (c cdbRecords) forEach(fn func(key, val []byte) error) error { return c.r.ForEach(fn) }

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

// SyncDir makes a rename in dir durable. File systems that cannot sync a directory
// (EINVAL, ENOTSUP) are not an error. Compile uses it for the CDB, pgsync for the text it
// writes beside it.
func SyncDir(dir string) error {
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
