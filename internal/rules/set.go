package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	"block-forged-sender/internal/cdb"
)

// Set is a loaded list of rules: an open CDB, or the text parsed into memory when the
// CDB could not be written. It is safe for concurrent use.
type Set struct {
	mu   sync.Mutex
	r    *cdb.Reader         // the CDB, or nil
	mem  map[string][][]byte // in memory: key -> encoded values, in file order
	file string              // source file name, for Rule.File
	buf  []byte              // probe keys for the CDB
	// state of the Lookup in progress
	m    Match
	sc   Scope
	err  error
	addr string
	key  []byte
}

// LoadInfo tells the caller how [Load] got its rules, so that it can log it.
type LoadInfo struct {
	Source   string // the file the rules were read from: the CDB, or the text when InMemory
	Compiled bool   // Load compiled the text to the CDB (it was missing or older than the text)
	InMemory bool   // the CDB could not be written, so the text was parsed into memory
	Stale    bool   // InMemory, and a CDB older than the text exists (it was not used)
	Entries  int    // entries compiled or parsed; 0 when an existing CDB was opened
	Command  string // when InMemory: the command that compiles the CDB, to run as its owner
	Err      error  // when InMemory: why the CDB could not be written
}

// Load opens the rules at path, a rules text file whose CDB is path+".cdb", compiling the
// CDB when it is missing or older than the text (in the manner of TMDA):
//
//   - path ends in ".cdb": it is the CDB, opened as it is; there is no text;
//   - the text is missing and the CDB exists: the CDB is used;
//   - both are missing: an error that satisfies errors.Is(err, fs.ErrNotExist);
//   - the CDB exists and the text is not newer: the CDB is used;
//   - otherwise the text is compiled with [Compile] and the new CDB used. When the
//     directory is not writable (EACCES, EPERM or EROFS creating the temporary file),
//     the text is parsed into memory instead and LoadInfo says so, with the command to
//     run. Any other failure (a syntax error, a read error, a directory where a file
//     should be, a corrupt CDB) is an error: rules are never used half-read.
func Load(path string) (*Set, LoadInfo, error) {
	if strings.HasSuffix(path, ".cdb") {
		s, err := openCDB(path)
		return s, LoadInfo{Source: path}, err
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
		return s, LoadInfo{Source: cdbPath}, err
	}
	n, err := Compile(path, cdbPath)
	if err == nil {
		s, err := openCDB(cdbPath)
		return s, LoadInfo{Source: cdbPath, Compiled: true, Entries: n}, err
	}
	if !notWritable(err) {
		return nil, LoadInfo{}, err
	}
	info := LoadInfo{
		Source:   path,
		InMemory: true,
		Stale:    cerr == nil,
		Command:  "block-forged-sender compile " + shellQuote(path),
		Err:      err,
	}
	s, n, perr := parseMemory(path)
	info.Entries = n
	return s, info, perr
}

// openCDB opens a compiled rules file and checks its meta record.
func openCDB(path string) (*Set, error) {
	r, err := cdb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	v, found, err := r.Get([]byte(metaKey))
	if err == nil && !found {
		err = fmt.Errorf("rules: %s: not a compiled rules file (no meta record): %w", path, cdb.ErrCorrupt)
	}
	var file string
	if err == nil {
		file, err = parseMeta(v)
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("rules: %s: %w", path, err)
	}
	return &Set{r: r, file: file}, nil
}

// parseMemory parses the rules text at path into an in-memory Set.
func parseMemory(path string) (*Set, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("rules: %w", err)
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("rules: %w", err)
	}
	s := &Set{mem: make(map[string][][]byte), file: path}
	n := 0
	err = Parse(f, path, func(r Rule) error {
		s.mem[r.Key] = append(s.mem[r.Key], appendValue(nil, &r))
		n++
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if err := unchanged(f, before); err != nil {
		return nil, 0, err
	}
	return s, n, nil
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
