// Package pgsync keeps a rules text and its CDB in step with a database query, so that
// many MX hosts run one list: each row's first column is one line of the text. [Sync]
// runs the query once, checks the whole list as compile does, and replaces the two files
// atomically when it changed; [Watch] does that again on every NOTIFY, periodically, and
// after a lost connection comes back. A query that fails, a row that is no rules line,
// or an empty result where the list in place has entries never replaces a good list.
//
// The database is behind [Source]; [Conn] is PostgreSQL's, through pgx. This package links
// pgx and with it crypto/*, so only the block-forged-sender-sync program may import it,
// never the per-message program.
package pgsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// Source is the database as a sync needs it.
type Source interface {
	// Rows runs query and calls fn with the first column of each row, in order; null says
	// the value is SQL NULL. col is valid only during the call.
	Rows(ctx context.Context, query string, fn func(col []byte, null bool) error) error
}

// Options are the choices of a sync.
type Options struct {
	// AllowEmpty lets an empty result (no entries) replace a list that has entries; without
	// it that result is refused with [ErrEmpty], since an emptied table or a query that
	// suddenly matches nothing would otherwise lift every rule on every host at once.
	AllowEmpty bool
}

// Action is what a sync did to the files.
type Action string

const (
	Created   Action = "created"   // there was no rules text: it and its CDB were written
	Replaced  Action = "replaced"  // the list changed: both files were replaced
	Unchanged Action = "unchanged" // the list in place is the query's: nothing was written
	Kept      Action = "kept"      // an error: the files in place were left as they were
)

// Result is what a sync did.
type Result struct {
	Action   Action
	Rows     int           // rows the query returned
	Entries  int           // rules entries among them (not blank or comment rows)
	Version  string        // the rules version of the list in place afterwards; "" when there is none
	Duration time.Duration // query, check and replacement
}

// RowError is a row that cannot be a line of the rules text: NULL, a line break inside, or
// a line that compile refuses (Msg is then compile's message, which shows the entry).
// Row counts from 1 in the order of the result.
type RowError struct {
	Row  int
	Text string // the row's value, cut to 200 bytes
	Msg  string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("pgsync: row %d: %s", e.Row, e.Msg)
}

// ErrEmpty refuses an empty result while the list in place has entries (see
// [Options.AllowEmpty]).
var ErrEmpty = errors.New("pgsync: the query returned no entries and the list in place has some")

// QueryError is a failed query (or a connection lost during it): the database's error.
type QueryError struct{ Err error }

func (e *QueryError) Error() string { return "pgsync: query: " + e.Err.Error() }
func (e *QueryError) Unwrap() error { return e.Err }

// Sync runs query on db and makes its rows the rules text rulesFile and its CDB
// rulesFile.cdb, when they are a valid list that differs from the one in place (see
// [replace] for how and in which order the files are replaced, and [same] for how a list
// is known to be unchanged). On any error the files are left as they were, and the
// Result's Action is [Kept], its Version that of the list in place.
func Sync(ctx context.Context, db Source, query, rulesFile string, opt Options) (Result, error) {
	start := time.Now()
	res := Result{Action: Kept}
	fail := func(err error) (Result, error) {
		res.Version, _ = currentVersion(rulesFile)
		res.Duration = time.Since(start)
		return res, err
	}
	text, rows, err := fetch(ctx, db, query)
	res.Rows = rows
	if err != nil {
		return fail(err)
	}
	if res.Entries, err = validate(text, rulesFile); err != nil {
		res.Entries = 0
		return fail(rowError(err, text))
	}
	if same(rulesFile, text) && current(rulesFile) {
		if v, err := version(rulesFile + ".cdb"); err == nil {
			res.Action, res.Version, res.Duration = Unchanged, v, time.Since(start)
			return res, nil
		}
	}
	if res.Entries == 0 && !opt.AllowEmpty && hasEntries(rulesFile) {
		return fail(ErrEmpty)
	}
	created, err := replace(rulesFile, text)
	if err != nil {
		return fail(err)
	}
	res.Action = Replaced
	if created {
		res.Action = Created
	}
	res.Version, err = version(rulesFile + ".cdb")
	res.Duration = time.Since(start)
	return res, err
}

// fetch runs the query and joins the rows into the rules text, one row a line. A NULL
// and a value with a line break are refused here: each row must be exactly one line, so
// that a line number is a row number.
func fetch(ctx context.Context, db Source, query string) (text []byte, rows int, err error) {
	var b bytes.Buffer
	err = db.Rows(ctx, query, func(col []byte, null bool) error {
		rows++
		switch {
		case null:
			return &RowError{Row: rows, Text: "", Msg: "NULL: a row's first column must be a rules line (use WHERE ... IS NOT NULL)"}
		case bytes.IndexByte(col, '\n') >= 0, bytes.IndexByte(col, '\r') >= 0:
			return &RowError{Row: rows, Text: clip(col), Msg: fmt.Sprintf("%q has a line break inside: a row is one line of the rules text", clip(col))}
		}
		b.Write(col)
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		var re *RowError
		if !errors.As(err, &re) {
			err = &QueryError{err}
		}
		return nil, rows, err
	}
	return b.Bytes(), rows, nil
}

// rowError turns the rules package's error for a line into a [RowError] that names the
// row and shows it.
func rowError(err error, text []byte) error {
	line, msg, ok := lineError(err)
	if !ok {
		return err
	}
	return &RowError{Row: line, Text: clip(nthLine(text, line)), Msg: msg}
}

// nthLine returns line n (from 1) of text, without its line end.
func nthLine(text []byte, n int) []byte {
	for i := 1; len(text) > 0; i++ {
		line, rest, _ := bytes.Cut(text, []byte{'\n'})
		if i == n {
			return line
		}
		text = rest
	}
	return nil
}

// clip cuts a row's value for an error message.
func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}
