package pgsync

import (
	"bytes"
	"errors"

	"block-forged-sender/internal/rules"
)

// This file is everything a sync asks of package rules, in one place: checking a text,
// compiling it, reading a compiled list's version, and the line an error is about.

// validate checks text as compile checks a rules file named name, writing nothing, and
// returns its number of entries.
func validate(text []byte, name string) (entries int, err error) {
	err = rules.Parse(bytes.NewReader(text), name, func(rules.Rule) error {
		entries++
		return nil
	})
	return entries, err
}

// lineError returns the line and message of a rules error about one line of the text.
func lineError(err error) (line int, msg string, ok bool) {
	var se *rules.SyntaxError
	if !errors.As(err, &se) {
		return 0, "", false
	}
	return se.Line, se.Msg, true
}

// compile compiles the rules text src into the CDB dst, atomically, giving dst src's
// modification time.
func compile(src, dst string) (entries int, err error) {
	rep, err := rules.Compile(src, dst)
	return rep.Entries, err
}

// errNoVersion: a CDB compiled by an older version of the program records no rules
// version; it is compiled again, as a changed list.
var errNoVersion = errors.New("pgsync: the compiled list records no rules version")

// version returns the rules version of the compiled list at cdbPath (rules.CDBVersion):
// the same list compiled on any host, whatever its path or modification time, has the same
// version.
func version(cdbPath string) (string, error) {
	v, err := rules.CDBVersion(cdbPath)
	if err == nil && v == "" {
		err = errNoVersion
	}
	return v, err
}

// current reports whether the CDB in place is what the per-message program would use as it
// is: not older than the text, and no control file a :rcpthosts line reads changed since
// it was compiled (else the list changed though the rows did not).
func current(rulesFile string) bool {
	s, info, err := rules.LoadReadOnly(rulesFile)
	if err != nil {
		return false
	}
	s.Close()
	return !info.InMemory && !info.LastGood
}
