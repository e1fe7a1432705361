package pgsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"block-forged-sender/internal/pgtest"
	"block-forged-sender/internal/rules"
	"block-forged-sender/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// query is the README's query for the table of rules lines.
const query = "SELECT line FROM bfs_rules ORDER BY id"

// fixture is a database of the test's own in the private cluster, with the README's table
// of rules lines and its NOTIFY trigger, and a directory for the rules files.
type fixture struct {
	pg   *pgtest.Cluster
	db   string
	cfg  *Config
	dir  string
	file string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pg := pgtest.Start(t)
	f := &fixture{pg: pg, db: pg.NewDB(t), dir: t.TempDir()}
	f.file = filepath.Join(f.dir, "badsenders")
	pg.SQL(t, f.db, testenv.Snippet(t, "sync-schema"))
	cfg, err := ParseDSN(pg.DSN(f.db))
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	return f
}

// set replaces the table's rows with lines (in one statement, so one NOTIFY).
func (f *fixture) set(t *testing.T, lines ...string) {
	t.Helper()
	f.setWith(t, "", lines...)
}

// setWith is set with a statement at the start of the transaction.
func (f *fixture) setWith(t *testing.T, first string, lines ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("BEGIN; " + first + " DELETE FROM bfs_rules;\n")
	for _, l := range lines {
		fmt.Fprintf(&b, "INSERT INTO bfs_rules (line) VALUES (%s);\n", quote(l))
	}
	b.WriteString("COMMIT;\n")
	f.pg.SQL(t, f.db, b.String())
}

func quote(s string) string {
	return "E'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`).Replace(s) + "'"
}

func (f *fixture) conn(t *testing.T) *Conn {
	t.Helper()
	c, err := Connect(context.Background(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (f *fixture) sync(t *testing.T, opt Options) (Result, error) {
	t.Helper()
	return Sync(context.Background(), f.conn(t), query, f.file, opt)
}

// stamp is what a reader can see of a file without reading it.
type stamp struct {
	ino   uint64
	mtime time.Time
	size  int64
}

func stampOf(t *testing.T, path string) stamp {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return stamp{fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime(), fi.Size()}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lookup looks addr up in the rules at file as the per-message program does (rules.Load),
// failing the test if Load had to compile or read the text: the sync left a CDB in step.
func lookup(t *testing.T, file, addr string) rules.Match {
	t.Helper()
	s, info, err := rules.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if info.Compiled || info.InMemory {
		t.Errorf("rules.Load(%s) after a sync: %+v, want the CDB as it is", file, info)
	}
	m, err := s.Lookup(addr, rules.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var list1 = []string{
	"# from the database",
	"@ours.example  forged: ours",
	".ours.example  forged: a subdomain of ours",
	"!news@ours.example  our newsletter",
	"",
	"phisher@scam.example",
}

// TestSync: the rows become the text, line for line, and its CDB; the per-message
// program's rules.Load uses that CDB as it is.
func TestSync(t *testing.T) {
	f := newFixture(t)
	f.set(t, list1...)
	res, err := f.sync(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != Created || res.Rows != 6 || res.Entries != 4 || len(res.Version) != 12 {
		t.Errorf("Sync = %+v, want created, 6 rows, 4 entries, a 12-digit version", res)
	}
	if got, want := readFile(t, f.file), strings.Join(list1, "\n")+"\n"; got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
	if v, err := version(f.file + ".cdb"); err != nil || v != res.Version {
		t.Errorf("version of the CDB = %q, %v; want %q", v, err, res.Version)
	}
	tf, cf := stampOf(t, f.file), stampOf(t, f.file+".cdb")
	if !tf.mtime.Equal(cf.mtime) {
		t.Errorf("text mtime %v, CDB mtime %v: want equal", tf.mtime, cf.mtime)
	}
	for addr, blocked := range map[string]bool{"ceo@ours.example": true, "x@mx.ours.example": true, "news@ours.example": false, "phisher@scam.example": true, "a@other.example": false} {
		m := lookup(t, f.file, addr)
		if m.Blocked() != blocked {
			t.Errorf("%s: blocked %v, want %v (%+v)", addr, m.Blocked(), blocked, m)
		}
		if m.Block != nil && m.Block.File != f.file {
			t.Errorf("%s: rule file %q, want %q", addr, m.Block.File, f.file)
		}
	}

	// Any column type comes as its text: the query "SELECT '@' || domain ..." shape.
	f.pg.SQL(t, f.db, "CREATE TABLE domain (domain varchar(255), active boolean); INSERT INTO domain VALUES ('hosted.example', true), ('gone.example', false), ('also.example', true);")
	res, err = Sync(context.Background(), f.conn(t), testenv.Snippet(t, "sync-query-postfixadmin"), f.file, Options{})
	if err != nil || res.Action != Replaced || res.Entries != 2 {
		t.Fatalf("postfixadmin query: %+v, %v; want replaced, 2 entries", res, err)
	}
	if got := readFile(t, f.file); got != "@also.example\n@hosted.example\n" {
		t.Errorf("postfixadmin text = %q", got)
	}
}

// TestSyncUnchanged: the same rows again write nothing (the same inodes and times); a
// changed row replaces both files.
func TestSyncUnchanged(t *testing.T) {
	f := newFixture(t)
	f.set(t, list1...)
	first, err := f.sync(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tf, cf := stampOf(t, f.file), stampOf(t, f.file+".cdb")
	time.Sleep(10 * time.Millisecond)
	res, err := f.sync(t, Options{})
	if err != nil || res.Action != Unchanged || res.Version != first.Version || res.Entries != 4 {
		t.Fatalf("second Sync = %+v, %v; want unchanged, version %s", res, err, first.Version)
	}
	if got := stampOf(t, f.file); got != tf {
		t.Errorf("text touched: %+v, was %+v", got, tf)
	}
	if got := stampOf(t, f.file+".cdb"); got != cf {
		t.Errorf("CDB touched: %+v, was %+v", got, cf)
	}

	f.set(t, append(list1, "@new.example")...)
	res, err = f.sync(t, Options{})
	if err != nil || res.Action != Replaced || res.Entries != 5 || res.Version == first.Version {
		t.Fatalf("Sync after a change = %+v, %v; want replaced, 5 entries, a new version", res, err)
	}
	if stampOf(t, f.file).ino == tf.ino || stampOf(t, f.file+".cdb").ino == cf.ino {
		t.Error("a changed list was not replaced by new files (rename)")
	}
	if !lookup(t, f.file, "a@new.example").Blocked() {
		t.Error("@new.example not in the CDB")
	}

	// A CDB out of step with the text (a sync that failed after the text, an edit, a
	// hand-made CDB) is replaced although the text is the same.
	os.Chtimes(f.file+".cdb", time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	if res, err := f.sync(t, Options{}); err != nil || res.Action != Replaced {
		t.Errorf("Sync with a CDB out of step = %+v, %v; want replaced", res, err)
	}
	os.Remove(f.file + ".cdb")
	if res, err := f.sync(t, Options{}); err != nil || res.Action != Replaced {
		t.Errorf("Sync without a CDB = %+v, %v; want replaced", res, err)
	}
}

// TestSyncBadRows: a row that is no rules line, a NULL, a row with a line break or a
// failed query leave the list in place untouched; the error names the row.
func TestSyncBadRows(t *testing.T) {
	f := newFixture(t)
	f.set(t, list1...)
	good, err := f.sync(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	text := readFile(t, f.file)
	tf, cf := stampOf(t, f.file), stampOf(t, f.file+".cdb")
	for _, tc := range []struct {
		name  string
		lines []string
		query string
		want  string
	}{
		{"syntax", []string{"@ok.example", "@", "@also-ok.example"}, "", `pgsync: row 2: `},
		{"no domain", []string{"@ok.example", "# c", "ceo"}, "", `pgsync: row 3: `},
		{"NULL", nil, "SELECT line FROM (VALUES (1, '@ok.example'), (2, NULL)) v (id, line) ORDER BY id", `pgsync: row 2: NULL`},
		{"line break", []string{"@ok.example\n@other.example"}, "", `pgsync: row 1: "@ok.example\n@other.example" has a line break inside`},
		{"CR", []string{"@ok.example\r"}, "", `pgsync: row 1: "@ok.example\r" has a line break inside`},
		{"query", nil, "SELECT line FROM no_such_table", `pgsync: query: ERROR: relation "no_such_table" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.lines != nil {
				f.set(t, tc.lines...)
			}
			q := query
			if tc.query != "" {
				q = tc.query
			}
			res, err := Sync(context.Background(), f.conn(t), q, f.file, Options{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Sync = %v, want an error starting %q", err, tc.want)
			}
			var re *RowError
			if tc.name != "query" && !errors.As(err, &re) {
				t.Errorf("error %T is no *RowError", err)
			}
			if res.Action != Kept || res.Version != good.Version {
				t.Errorf("Result = %+v, want kept, version %s", res, good.Version)
			}
			if got := readFile(t, f.file); got != text {
				t.Errorf("text changed to %q", got)
			}
			if stampOf(t, f.file) != tf || stampOf(t, f.file+".cdb") != cf {
				t.Error("files touched")
			}
			if tmps, _ := filepath.Glob(filepath.Join(f.dir, ".*")); len(tmps) > 0 {
				t.Errorf("temporary files left: %v", tmps)
			}
		})
	}
}

// TestSyncEmpty: an empty result keeps a list that has entries, unless AllowEmpty; a list
// of comments only is empty; a first sync may write an empty list.
func TestSyncEmpty(t *testing.T) {
	f := newFixture(t)
	f.set(t, list1...)
	good, err := f.sync(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, lines := range [][]string{{}, {"# nothing", ""}} {
		f.set(t, lines...)
		res, err := f.sync(t, Options{})
		if !errors.Is(err, ErrEmpty) || res.Action != Kept || res.Version != good.Version {
			t.Errorf("%q: Sync = %+v, %v; want ErrEmpty, kept", lines, res, err)
		}
		if got := readFile(t, f.file); got != strings.Join(list1, "\n")+"\n" {
			t.Errorf("%q: text changed to %q", lines, got)
		}
	}
	res, err := f.sync(t, Options{AllowEmpty: true})
	if err != nil || res.Action != Replaced || res.Entries != 0 {
		t.Fatalf("AllowEmpty: %+v, %v; want replaced, 0 entries", res, err)
	}
	if got := readFile(t, f.file); got != "# nothing\n\n" {
		t.Errorf("text = %q", got)
	}
	if lookup(t, f.file, "ceo@ours.example").Blocked() {
		t.Error("the emptied list still blocks")
	}
	// Now the list in place is empty: an empty result needs no permission.
	f.set(t)
	if res, err := f.sync(t, Options{}); err != nil || res.Action != Replaced {
		t.Errorf("empty over empty: %+v, %v", res, err)
	}
	os.Remove(f.file)
	os.Remove(f.file + ".cdb")
	if res, err := f.sync(t, Options{}); err != nil || res.Action != Created || readFile(t, f.file) != "" {
		t.Errorf("first sync of an empty table: %+v, %v", res, err)
	}
}

// TestSameVersion: two targets of the same database, in different directories under
// different names, get the same text and the same rules version. (Until the rules
// package's own version lands, the version is this package's checksum of the CDB records
// without the meta record, which names the file: see rulesapi.go.)
func TestSameVersion(t *testing.T) {
	f := newFixture(t)
	f.set(t, list1...)
	a := filepath.Join(t.TempDir(), "badsenders")
	b := filepath.Join(t.TempDir(), "mx2-rules")
	ra, err := Sync(context.Background(), f.conn(t), query, a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // another mtime
	rb, err := Sync(context.Background(), f.conn(t), query, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ra.Version != rb.Version || ra.Version == "" {
		t.Errorf("versions %q and %q, want the same", ra.Version, rb.Version)
	}
	if readFile(t, a) != readFile(t, b) {
		t.Error("texts differ")
	}
	if bytes.Equal([]byte(readFile(t, a+".cdb")), []byte(readFile(t, b+".cdb"))) {
		t.Error("the CDBs are byte for byte equal although they name different files: the test proves nothing")
	}
	f.set(t, append(list1, "@more.example")...)
	rc, err := Sync(context.Background(), f.conn(t), query, b, Options{})
	if err != nil || rc.Version == ra.Version {
		t.Errorf("a changed list: version %q, %v; want one other than %q", rc.Version, err, ra.Version)
	}
}

// TestReplaceOrder: while syncs replace the list again and again, a reader doing what
// the per-message program does (rules.Load, in a loop) never finds a text newer than its
// CDB (it would compile or read the text), and always finds one of the two lists whole.
func TestReplaceOrder(t *testing.T) {
	f := newFixture(t)
	a := []string{"@a.example", "@both.example"}
	b := []string{"@b.example", "@both.example", "x@b2.example"}
	f.set(t, a...)
	if _, err := f.sync(t, Options{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errs := make(chan string, 100)
	loads := 0
	go func() {
		defer close(errs)
		for {
			select {
			case <-done:
				return
			default:
			}
			s, info, err := rules.Load(f.file)
			if err != nil {
				errs <- err.Error()
				continue
			}
			loads++
			if info.Compiled || info.InMemory {
				errs <- fmt.Sprintf("Load compiled or read the text: %+v", info)
			}
			ma, _ := s.Lookup("x@a.example", rules.Scope{})
			mb, _ := s.Lookup("x@b.example", rules.Scope{})
			mboth, _ := s.Lookup("x@both.example", rules.Scope{})
			if ma.Blocked() == mb.Blocked() || !mboth.Blocked() {
				errs <- fmt.Sprintf("half a list: a %v, b %v, both %v", ma.Blocked(), mb.Blocked(), mboth.Blocked())
			}
			s.Close()
		}
	}()
	c := f.conn(t)
	for i := range 30 {
		lines := a
		if i%2 == 0 {
			lines = b
		}
		f.set(t, lines...)
		if res, err := Sync(context.Background(), c, query, f.file, Options{}); err != nil || res.Action != Replaced {
			t.Fatalf("sync %d: %+v, %v", i, res, err)
		}
	}
	close(done)
	n := 0
	for e := range errs {
		if n++; n <= 5 {
			t.Error(e)
		}
	}
	t.Logf("%d loads during 30 syncs", loads)
	if loads == 0 {
		t.Error("the reader never ran")
	}
}

// TestSyncForeignCDB: a CDB whose time the sync may not set (another user's) is replaced
// by a copy of itself first, and the sync goes on in the same order.
func TestSyncForeignCDB(t *testing.T) {
	f := newFixture(t)
	f.set(t, list1...)
	if _, err := f.sync(t, Options{}); err != nil {
		t.Fatal(err)
	}
	refused := 0
	testOnlyChtimes = func(string, time.Time, time.Time) error {
		refused++
		return &os.PathError{Op: "chtimes", Path: f.file + ".cdb", Err: syscall.EPERM}
	}
	defer func() { testOnlyChtimes = os.Chtimes }()
	f.set(t, append(list1, "@foreign.example")...)
	res, err := f.sync(t, Options{})
	if err != nil || res.Action != Replaced || refused != 1 {
		t.Fatalf("Sync = %+v, %v (chtimes refused %d times); want replaced", res, err, refused)
	}
	if !lookup(t, f.file, "x@foreign.example").Blocked() {
		t.Error("the new list is not in the CDB")
	}
	if tmps, _ := filepath.Glob(filepath.Join(f.dir, ".*")); len(tmps) > 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

// TestSyncWriteFailure: a list that cannot be written (a directory that is gone) is an
// error that leaves nothing behind.
func TestSyncWriteFailure(t *testing.T) {
	f := newFixture(t)
	f.set(t, list1...)
	file := filepath.Join(f.dir, "no-such-dir", "badsenders")
	res, err := Sync(context.Background(), f.conn(t), query, file, Options{})
	if err == nil || res.Action != Kept || res.Version != "" {
		t.Errorf("Sync into a missing directory = %+v, %v; want an error", res, err)
	}
}
