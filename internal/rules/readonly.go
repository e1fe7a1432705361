package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// errNotCompiled is LoadInfo.Err of a [LoadReadOnly] that read the text.
var errNotCompiled = errors.New("rules: a read-only load does not compile")

// LoadReadOnly opens the rules at path as [Load] does, but never writes, whoever runs it
// (check, run by an administrator as root on the live rules): the CDB is used when Load
// would use it (the text is missing or not newer), and where Load would compile the text,
// the text is parsed into memory instead, as Load's fallback for a directory it cannot
// write does: LoadInfo has InMemory (and Stale when an older CDB exists), the compile
// command and Err wrapping errNotCompiled. Errors are Load's.
func LoadReadOnly(path string) (*Set, LoadInfo, error) {
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
	info := LoadInfo{
		Source:   path,
		InMemory: true,
		Stale:    cerr == nil,
		Command:  "block-forged-sender compile " + shellQuote(path),
		Err:      errNotCompiled,
	}
	s, n, err := parseMemory(path)
	info.Entries = n
	return s, info, err
}
