package pgsync

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"block-forged-sender/internal/cdb"
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
	return rules.Compile(src, dst)
}

// metaKey is the key of the rules CDB's meta record (docs/DESIGN.md), which names the
// source file and is left out of the version.
const metaKey = "\x00bfs"

// version returns the rules version of the compiled list at cdbPath: the first 12 hex
// digits of CRC-32C and CRC-32 (IEEE) of its records (uvarint key length, key, uvarint
// value length, value) in file order, the meta record left out, so that the same list
// compiled on any host, whatever its path or modification time, has the same version.
func version(cdbPath string) (string, error) {
	r, err := cdb.Open(cdbPath)
	if err != nil {
		return "", fmt.Errorf("pgsync: %w", err)
	}
	defer r.Close()
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	var c, i uint32
	buf := make([]byte, 0, 64<<10)
	flush := func() {
		c = crc32.Update(c, castagnoli, buf)
		i = crc32.Update(i, crc32.IEEETable, buf)
		buf = buf[:0]
	}
	meta := false
	err = r.ForEach(func(key, val []byte) error {
		if string(key) == metaKey {
			meta = true
			return nil
		}
		buf = binary.AppendUvarint(buf, uint64(len(key)))
		buf = append(buf, key...)
		buf = binary.AppendUvarint(buf, uint64(len(val)))
		buf = append(buf, val...)
		if len(buf) >= 60<<10 {
			flush()
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("pgsync: %s: %w", cdbPath, err)
	}
	if !meta {
		return "", fmt.Errorf("pgsync: %s: not a compiled rules file (no meta record)", cdbPath)
	}
	flush()
	return fmt.Sprintf("%08x%08x", c, i)[:12], nil
}
