package rules

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	"block-forged-sender/internal/cdb"
)

// Set is a loaded list of rules: an open CDB, or the text parsed into memory when the
// CDB could not be written. It is safe for concurrent use.
type Set struct {
	mu      sync.Mutex
	r       *cdb.Reader         // the CDB, or nil
	mem     map[string][][]byte // in memory: key -> encoded values, in file order
	file    string              // source file name, for Rule.File
	version string              // the rules version; "" when unknown
	deps    []dep               // the files a :rcpthosts line read, from the meta record
	buf     []byte              // probe keys for the CDB
	// state of the Lookup in progress
	m    Match
	sc   Scope
	err  error
	addr string
	key  []byte
}

// Version returns the rules version of the list: 12 lowercase hexadecimal digits that
// are the same on every host that compiled the same list (see the package
// documentation), or "" for a CDB compiled by a version of this program that did not
// record it.
func (s *Set) Version() string { return s.version }

// LoadInfo tells the caller how [Load] got its rules, so that it can log it.
type LoadInfo struct {
	Source   string // the file the rules in use were read from: the CDB, or the text when InMemory
	Version  string // the rules version of the rules in use; "" when unknown
	Compiled bool   // Load compiled the text to the CDB (it was missing or older than the text)
	InMemory bool   // the CDB could not be written, so the text was parsed into memory
	Stale    bool   // InMemory, and a CDB older than the text exists (it was not used)
	Entries  int    // entries compiled or parsed; 0 when an existing CDB was opened
	Warnings int    // warnings of that compile or parse (the compile command lists them)

	// LastGood says that the text changed (it, or a control file a :rcpthosts line reads,
	// is newer than the CDB) but cannot be compiled: the rules in use are those of the
	// CDB, compiled from an earlier version of the text. Err says why; every log line
	// should say so until the text is fixed, as Postfix does with a map older than its
	// source.
	LastGood bool

	Command string // when InMemory or LastGood: the command to run, as the owner of the rules
	Err     error  // when InMemory: why the CDB could not be written; when LastGood: why the text does not compile (an [*ErrorList] for mistakes in it)
}

// Load opens the rules at path, a rules text file whose CDB is path+".cdb", compiling the
// CDB when it is missing or older than the text (in the manner of TMDA):
//
//   - path ends in ".cdb": it is the CDB, opened as it is; there is no text;
//   - the text is missing and the CDB exists: the CDB is used;
//   - both are missing: an error that satisfies errors.Is(err, fs.ErrNotExist);
//   - the CDB exists, the text is not newer, and no control file a :rcpthosts line read
//     has changed since: the CDB is used;
//   - otherwise the text is compiled with [Compile] and the new CDB used. When the
//     directory is not writable (EACCES, EPERM or EROFS creating the temporary file),
//     the text is parsed into memory instead and LoadInfo says so, with the command to
//     run.
//
// When that compile (or parse) fails, for any reason (a mistake in the text, a control
// file gone, the text changing while read, a full disk), and the CDB exists and is a
// complete compiled list (it has its meta record: Compile writes it last and renames the
// file into place whole), the CDB is used and LoadInfo.LastGood says so, with the error.
// Otherwise the failure is an error: rules are never used half-read, and a corrupt CDB is
// an error too.
func Load(path string) (*Set, LoadInfo, error) { return load(path, true) }

// errNotCompiled is LoadInfo.Err of a [LoadReadOnly] that read the text.
var errNotCompiled = errors.New("rules: a read-only load does not compile")

// LoadReadOnly opens the rules at path as [Load] does, but never writes, whoever runs it
// (check, run by an administrator as root on the live rules): the CDB is used when Load
// would use it, and where Load would compile the text, the text is parsed into memory
// instead, as Load's fallback for a directory it cannot write does: LoadInfo has InMemory
// (and Stale when an older CDB exists), the compile command and Err wrapping
// errNotCompiled. A text that does not parse falls back to the last good CDB as in Load.
func LoadReadOnly(path string) (*Set, LoadInfo, error) { return load(path, false) }

func load(path string, write bool) (*Set, LoadInfo, error) {
	if strings.HasSuffix(path, ".cdb") {
		s, err := openCDB(path)
		if err != nil {
			return nil, LoadInfo{Source: path}, err
		}
		return s, LoadInfo{Source: path, Version: s.version}, nil
	}
	cdbPath := path + ".cdb"
	tfi, terr := os.Stat(path)
	cfi, cerr := os.Stat(cdbPath)
	switch {
	case terr != nil && !errors.Is(terr, fs.ErrNotExist):
		return nil, LoadInfo{}, fmt.Errorf("rules: %w", terr)
	case cerr != nil && !errors.Is(cerr, fs.ErrNotExist):
		return nil, LoadInfo{}, fmt.Errorf("rules: %w", cerr)
	case cerr == nil && !cfi.Mode().IsRegular():
		return nil, LoadInfo{}, fmt.Errorf("rules: %s: not a regular file", cdbPath)
	case terr != nil && cerr != nil:
		return nil, LoadInfo{}, fmt.Errorf("rules: neither %s nor %s exists: %w", path, cdbPath, fs.ErrNotExist)
	case terr == nil && !tfi.Mode().IsRegular():
		return nil, LoadInfo{}, fmt.Errorf("rules: %s: not a regular file", path)
	case terr != nil, cerr == nil && !tfi.ModTime().After(cfi.ModTime()):
		s, err := openCDB(cdbPath)
		if err != nil {
			return nil, LoadInfo{}, err
		}
		if terr != nil || !s.depsChanged() {
			return s, LoadInfo{Source: cdbPath, Version: s.version}, nil
		}
		s.Close() // a control file changed: compile again
	}
	command := "block-forged-sender compile " + shellQuote(path)
	var rep Report
	err := errNotCompiled
	if write {
		rep, err = Compile(path, cdbPath)
	}
	if err == nil {
		s, err := openCDB(cdbPath)
		if err != nil {
			return nil, LoadInfo{}, err
		}
		return s, LoadInfo{Source: cdbPath, Version: s.version, Compiled: true, Entries: rep.Entries, Warnings: len(rep.Warnings) + rep.MoreWarnings}, nil
	}
	if notWritable(err) || err == errNotCompiled {
		s, rep, perr := LoadText(path)
		if perr == nil {
			return s, LoadInfo{
				Source:   path,
				Version:  s.version,
				InMemory: true,
				Stale:    cerr == nil,
				Entries:  rep.Entries,
				Warnings: len(rep.Warnings) + rep.MoreWarnings,
				Command:  command,
				Err:      err,
			}, nil
		}
		err = perr
	}
	if cerr == nil {
		if s, oerr := openCDB(cdbPath); oerr == nil {
			return s, LoadInfo{Source: cdbPath, Version: s.version, LastGood: true, Command: command, Err: err}, nil
		}
	}
	return nil, LoadInfo{}, err
}

// depsChanged reports whether a control file the list was compiled from has changed.
func (s *Set) depsChanged() bool {
	for _, d := range s.deps {
		if stampPath(d.path) != d.stamp {
			return true
		}
	}
	return false
}

// openCDB opens a compiled rules file and checks its meta record.
func openCDB(path string) (*Set, error) {
	r, m, err := openMeta(path)
	if err != nil {
		return nil, err
	}
	return &Set{r: r, file: m.file, version: m.version, deps: m.deps}, nil
}

// openMeta opens a compiled rules file and reads its meta record.
func openMeta(path string) (*cdb.Reader, meta, error) {
	r, err := cdb.Open(path)
	if err != nil {
		return nil, meta{}, fmt.Errorf("rules: %w", err)
	}
	v, found, err := r.Get([]byte(metaKey))
	if err == nil && !found {
		err = fmt.Errorf("rules: %s: not a compiled rules file (no meta record): %w", path, cdb.ErrCorrupt)
	}
	var m meta
	if err == nil {
		m, err = parseMeta(v)
	}
	if err != nil {
		r.Close()
		return nil, meta{}, fmt.Errorf("rules: %s: %w", path, err)
	}
	return r, m, nil
}

// CDBVersion returns the rules version recorded in the compiled rules file at path (a
// CDB), reading only its meta record: "" for a CDB compiled by a version of this program
// that did not record one.
func CDBVersion(path string) (string, error) {
	r, m, err := openMeta(path)
	if err != nil {
		return "", err
	}
	r.Close()
	return m.version, nil
}

// LoadText parses the rules text at path into an in-memory Set, writing nothing, and
// reports what it found as [Compile] would: the same entries, rules version and warnings,
// and every malformed line in an [*ErrorList].
func LoadText(path string) (*Set, Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Report{}, fmt.Errorf("rules: %w", err)
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return nil, Report{}, fmt.Errorf("rules: %w", err)
	}
	if !before.Mode().IsRegular() {
		return nil, Report{}, fmt.Errorf("rules: %s: not a regular file", path)
	}
	s := &Set{mem: make(map[string][][]byte), file: path}
	b := newBuilder(path, func(key, val []byte) error {
		s.mem[string(key)] = append(s.mem[string(key)], slices.Clone(val))
		return nil
	})
	if err := scan(io.NewSectionReader(f, 0, before.Size()), path, &b.errs, b.line); err != nil {
		return nil, Report{}, err
	}
	if !b.errs.empty() {
		return nil, Report{}, &b.errs
	}
	if err := unchanged(f, before); err != nil {
		return nil, Report{}, err
	}
	if err := b.lint(memRecords(s.mem), io.NewSectionReader(f, 0, before.Size())); err != nil {
		return nil, Report{}, err
	}
	rep := b.report()
	s.version = rep.Version
	return s, rep, nil
}

// memRecords is an in-memory Set's map as the analysis asks it.
type memRecords map[string][][]byte

func (m memRecords) lookup(key string, fn func([]byte) bool) error {
	for _, v := range m[key] {
		if !fn(v) {
			break
		}
	}
	return nil
}

func (m memRecords) forEach(fn func(key, val []byte) error) error {
	for k, vs := range m {
		for _, v := range vs {
			if err := fn([]byte(k), v); err != nil {
				return err
			}
		}
	}
	return nil
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./+:,@%=-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Close releases the CDB. A closed Set refuses lookups.
func (s *Set) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.r
	s.r, s.mem = nil, nil
	if r == nil {
		return nil
	}
	return r.Close()
}

var errClosed = errors.New("rules: lookup on a closed set")

// Lookup returns the rules that cover addr, a canonical address (local@domain, see
// [address.Address.Canonical]). It probes the keys [Probes] lists, most specific first,
// and returns the first block rule met and the first exception whose scopes hold for sc.
// The probes are a handful whatever the size of the list, and a lookup that finds no
// rule allocates nothing.
func (s *Set) Lookup(addr string, sc Scope) (Match, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r == nil && s.mem == nil {
		return Match{}, errClosed
	}
	s.m, s.sc, s.err, s.addr = Match{}, sc, nil, addr
	if s.r != nil {
		s.buf = append(s.buf[:0], addr...)
	}
	at := strings.LastIndexByte(addr, '@')
	done := s.probe(0)
	if !done && at > 0 {
		done = s.probe(at)
	}
	if at >= 0 && at+1 < len(addr) && addr[at+1] != '[' {
		for j := at + 2; !done && j < len(addr); j++ {
			if addr[j] == '.' {
				done = s.probe(j)
			}
		}
	}
	m, err := s.m, s.err
	s.m, s.sc, s.err, s.addr, s.key = Match{}, Scope{}, nil, "", nil
	if err != nil {
		return Match{}, err
	}
	return m, nil
}

// probe looks up the key that is the suffix of the address from off and reports whether
// the lookup is over (both a block and an exception found, or an error).
func (s *Set) probe(off int) bool {
	if off >= len(s.addr) || s.addr[off] == 0 { // never the meta record
		return false
	}
	if s.r == nil {
		vals := s.mem[s.addr[off:]]
		if len(vals) > 0 {
			s.key = []byte(s.addr[off:])
		}
		for _, v := range vals {
			if !s.visit(v) {
				break
			}
		}
	} else {
		s.key = s.buf[off:]
		if err := s.r.Lookup(s.key, s.visit); err != nil && s.err == nil {
			s.err = fmt.Errorf("rules: %w", err)
		}
	}
	return s.err != nil || (s.m.Block != nil && s.m.Except != nil)
}

// visit handles one value under s.key and reports whether to go on.
func (s *Set) visit(v []byte) bool {
	d := decoder{b: v}
	except := d.header()
	if d.bad {
		s.err = corruptValue(s.key)
		return false
	}
	if !except {
		if s.m.Block == nil {
			s.m.Block, s.err = decodeRule(s.key, v, s.file)
		}
	} else if s.m.Except == nil {
		var in bool
		in, s.err = inScope(s.key, v, s.sc)
		if in && s.err == nil {
			s.m.Except, s.err = decodeRule(s.key, v, s.file)
		}
	}
	return s.err == nil && (s.m.Block == nil || s.m.Except == nil)
}

// Probes appends to dst the keys [Set.Lookup] probes for the canonical address addr, most
// specific first: addr itself, then @domain, then .parent for each parent domain
// (a.b.example gives .b.example and .example), never .domain itself. An unqualified addr
// (no @) gives only itself; a domain literal ([192.0.2.1]) has no parents.
func Probes(dst []string, addr string) []string {
	dst = append(dst, addr)
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return dst
	}
	if at > 0 {
		dst = append(dst, addr[at:])
	}
	if at+1 < len(addr) && addr[at+1] != '[' {
		for j := at + 2; j < len(addr); j++ {
			if addr[j] == '.' {
				dst = append(dst, addr[j:])
			}
		}
	}
	return dst
}
