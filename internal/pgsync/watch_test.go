package pgsync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"block-forged-sender/internal/pgtest"
)

// recorder keeps a watch's events.
type recorder struct {
	mu  sync.Mutex
	evs []Event
}

func (r *recorder) add(e Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

// mark is the number of events so far.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

// since returns the events after mark.
func (r *recorder) since(mark int) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.evs[mark:]...)
}

// wait waits up to d for an event after mark that satisfies ok.
func (r *recorder) wait(t *testing.T, mark int, d time.Duration, what string, ok func(Event) bool) Event {
	t.Helper()
	var found Event
	if _, got := pgtest.WaitFor(d, func() bool {
		for _, e := range r.since(mark) {
			if ok(e) {
				found = e
				return true
			}
		}
		return false
	}); !got {
		t.Fatalf("no %s within %v; events:\n%s", what, d, describe(r.since(mark)))
	}
	return found
}

// describe lists events one a line.
func describe(evs []Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\t%s %s %s %+v err=%v down=%v attempts=%d\n", e.Kind, e.Role, e.Trigger, e.Result, e.Err, e.Down, e.Attempts)
	}
	return b.String()
}

func isSync(e Event) bool { return e.Kind == EventSync && e.Err == nil }

// watch runs Watch until the test ends (and checks that it returns when told to).
func (f *fixture) watch(t *testing.T, cfg WatchConfig) *recorder {
	t.Helper()
	r := &recorder{}
	cfg.Report = r.add
	if cfg.DB == nil {
		cfg.DB = f.cfg
	}
	cfg.Query, cfg.File = query, f.file
	if cfg.Channel == "" {
		cfg.Channel = "block_forged_sender"
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Hour // no periodic sync unless the test asks for it
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Watch(ctx, cfg)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Watch did not return within 10 s of its context's end")
		}
	})
	return r
}

// hasText waits until the rules text is want (and its CDB in step), and says how long that
// took.
func (f *fixture) hasText(t *testing.T, d time.Duration, lines ...string) time.Duration {
	t.Helper()
	want := strings.Join(lines, "\n") + "\n"
	took, ok := pgtest.WaitFor(d, func() bool {
		return same(f.file, []byte(want))
	})
	if !ok {
		t.Fatalf("the rules text is not %q (and its CDB in step) within %v", want, d)
	}
	return took
}

// TestWatchNotify: a change with its NOTIFY is in the files within 2 seconds; a burst of
// changes gives a few syncs, not one each.
func TestWatchNotify(t *testing.T) {
	f := newFixture(t)
	f.set(t, list1...)
	r := f.watch(t, WatchConfig{})
	e := r.wait(t, 0, 10*time.Second, "first sync", isSync)
	if e.Trigger != TriggerStart || e.Result.Action != Created {
		t.Errorf("first sync: %+v, want start, created", e)
	}
	for i, l := range []string{"@one.example", "@two.example", "@three.example"} {
		lines := append(append([]string(nil), list1...), l)
		mark := r.mark()
		f.set(t, lines...)
		took := f.hasText(t, 2*time.Second, lines...)
		t.Logf("change %d: in the files %v after its commit", i+1, took)
		e := r.wait(t, mark, time.Second, "notify sync", isSync)
		if e.Trigger != TriggerNotify || e.Result.Action != Replaced || e.Version != e.Result.Version || len(e.Version) != 12 {
			t.Errorf("sync after NOTIFY: %+v", e)
		}
	}

	before := testOnlySyncs.Load()
	mark := r.mark()
	var burst strings.Builder // 50 transactions, each with its NOTIFY, from one session
	for i := range 50 {
		fmt.Fprintf(&burst, "INSERT INTO bfs_rules (line) VALUES ('@burst%d.example');\n", i)
	}
	f.pg.SQL(t, f.db, burst.String())
	r.wait(t, mark, 5*time.Second, "sync of the burst", func(e Event) bool {
		return isSync(e) && same(f.file, []byte(mustText(t, f)))
	})
	time.Sleep(300 * time.Millisecond)
	if n := testOnlySyncs.Load() - before; n >= 50 {
		t.Errorf("50 NOTIFYs in a row gave %d syncs, want them coalesced", n)
	} else {
		t.Logf("50 NOTIFYs in a row: %d syncs", n)
	}
}

// mustText is the text the table gives now.
func mustText(t *testing.T, f *fixture) string {
	t.Helper()
	text, _, err := fetch(context.Background(), f.conn(t), query)
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

// TestWatchInterval: without a NOTIFY (a change by a session that sends none), the
// periodic sync finds it.
func TestWatchInterval(t *testing.T) {
	f := newFixture(t)
	f.set(t, list1...)
	f.pg.SQL(t, f.db, "ALTER TABLE bfs_rules DISABLE TRIGGER bfs_rules_changed")
	r := f.watch(t, WatchConfig{Interval: 500 * time.Millisecond})
	r.wait(t, 0, 10*time.Second, "first sync", isSync)
	mark := r.mark()
	lines := append(append([]string(nil), list1...), "@quiet.example")
	f.set(t, lines...)
	f.hasText(t, 5*time.Second, lines...)
	if e := r.wait(t, mark, time.Second, "interval sync", isSync); e.Trigger != TriggerInterval {
		t.Errorf("sync %+v, want trigger interval", e)
	}
}

// TestWatchConnectionLoss: the server ends the watch's connections (pg_terminate_backend),
// then goes away altogether (an immediate stop) and comes back. Meanwhile the files stay
// as they were; then the syncs resume, and each outage is reported once.
func TestWatchConnectionLoss(t *testing.T) {
	f := newFixture(t)
	f.set(t, list1...)
	r := f.watch(t, WatchConfig{RetryMin: 100 * time.Millisecond, RetryMax: time.Second})
	r.wait(t, 0, 10*time.Second, "first sync", isSync)
	text := readFile(t, f.file)
	tf, cf := stampOf(t, f.file), stampOf(t, f.file+".cdb")

	mark := r.mark()
	out := f.pg.SQL(t, f.db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '"+ApplicationName+"' AND datname = current_database()")
	if strings.TrimSpace(out) != "2" {
		t.Errorf("terminated %s backends, want 2 (listen and query)", out)
	}
	r.wait(t, mark, 5*time.Second, "listen connection lost", func(e Event) bool { return e.Kind == EventDisconnected && e.Role == RoleListen })
	r.wait(t, mark, 5*time.Second, "listen connection back", func(e Event) bool { return e.Kind == EventConnected && e.Role == RoleListen })
	lines := append(append([]string(nil), list1...), "@after-terminate.example")
	f.set(t, lines...)
	f.hasText(t, 5*time.Second, lines...)

	// The server stops: the connections fail, the files stay.
	mark = r.mark()
	before := testOnlySyncs.Load()
	f.pg.Stop(t)
	restarted := false
	defer func() {
		if !restarted {
			f.pg.Start()
		}
	}()
	r.wait(t, mark, 5*time.Second, "listen outage", func(e Event) bool { return e.Kind == EventDisconnected && e.Role == RoleListen })
	text, tf, cf = readFile(t, f.file), stampOf(t, f.file), stampOf(t, f.file+".cdb")
	// A NOTIFY-less sync attempt while it is down (the periodic one, or a retry).
	time.Sleep(2 * time.Second)
	if got := readFile(t, f.file); got != text || stampOf(t, f.file) != tf || stampOf(t, f.file+".cdb") != cf {
		t.Error("the files changed while the database was down")
	}
	downs := 0
	for _, e := range r.since(mark) {
		if e.Kind == EventDisconnected {
			downs++
		}
	}
	if downs > 2 {
		t.Errorf("%d disconnected events for one outage, want one per connection: %+v", downs, r.since(mark))
	}
	if err := f.pg.Start(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	e := r.wait(t, mark, 10*time.Second, "listen back", func(e Event) bool { return e.Kind == EventConnected && e.Role == RoleListen })
	if e.Down <= 0 || e.Attempts < 1 {
		t.Errorf("connected after an outage: %+v, want its duration and attempts", e)
	}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(f.pg.Dir, "log"))
			t.Logf("%s", log[max(0, len(log)-4000):])
		}
	})
	// The first sync after the outage (the listener's reconnection asks for it) finds the
	// query connection dead, and runs again on a new one at once.
	r.wait(t, mark, 10*time.Second, "sync after the outage", func(e Event) bool { return isSync(e) && e.Trigger == TriggerConnect })
	if testOnlySyncs.Load() == before {
		t.Error("no sync ran after the outage")
	}
	lines = append(lines, "@after-restart.example")
	f.set(t, lines...)
	f.hasText(t, 5*time.Second, lines...)
}

// TestWatchBadRow: a bad row keeps the list and is reported once, however many NOTIFYs
// come while it is there; fixing it is a sync again. An empty table is kept the same way.
func TestWatchBadRow(t *testing.T) {
	f := newFixture(t)
	f.set(t, list1...)
	r := f.watch(t, WatchConfig{})
	r.wait(t, 0, 10*time.Second, "first sync", isSync)
	text := readFile(t, f.file)

	for _, tc := range []struct {
		lines []string
		want  func(error) bool
	}{
		{[]string{"@ok.example", "@bad..example"}, func(err error) bool {
			var re *RowError
			return errors.As(err, &re) && re.Row == 2 && re.Text == "@bad..example"
		}},
		{nil, func(err error) bool { return errors.Is(err, ErrEmpty) }},
	} {
		mark := r.mark()
		before := testOnlySyncs.Load()
		f.set(t, tc.lines...)
		e := r.wait(t, mark, 5*time.Second, "failed sync", func(e Event) bool { return e.Kind == EventSync && e.Err != nil })
		if !tc.want(e.Err) || e.Result.Action != Kept || e.Version == "" {
			t.Errorf("failure %+v (%v)", e, e.Err)
		}
		for range 3 {
			f.pg.SQL(t, f.db, "NOTIFY block_forged_sender")
			time.Sleep(100 * time.Millisecond)
		}
		if _, ok := pgtest.WaitFor(5*time.Second, func() bool { return testOnlySyncs.Load()-before >= 4 }); !ok {
			t.Fatalf("%d syncs for 4 NOTIFYs", testOnlySyncs.Load()-before)
		}
		n := 0
		for _, e := range r.since(mark) {
			if e.Kind == EventSync && e.Err != nil {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the failure was reported %d times, want once: %+v", n, r.since(mark))
		}
		if got := readFile(t, f.file); got != text {
			t.Errorf("text replaced by %q", got)
		}
	}
	mark := r.mark()
	f.set(t, list1[1:]...)
	f.hasText(t, 5*time.Second, list1[1:]...)
	r.wait(t, mark, time.Second, "sync after the fix", isSync)
}

// TestWatchStandby: the query runs on a hot standby, LISTEN on the primary; a change on the
// primary is in the files within 2 seconds, read from the standby once it has replayed it.
// Without the primary to listen on, a standby is synced every interval, and the reason
// is reported once.
func TestWatchStandby(t *testing.T) {
	f := newFixture(t)
	f.set(t, list1...)
	sb := f.pg.Standby(t)
	scfg, err := ParseDSN(sb.DSN(f.db))
	if err != nil {
		t.Fatal(err)
	}
	if out := sb.SQL(t, f.db, "SELECT pg_is_in_recovery()"); strings.TrimSpace(out) != "t" {
		t.Fatalf("the standby is not in recovery: %q", out)
	}
	r := f.watch(t, WatchConfig{DB: scfg, Listen: f.cfg})
	r.wait(t, 0, 10*time.Second, "first sync", isSync)
	for i := range 6 {
		// Half of them commit asynchronously: the NOTIFY may come before the commit is
		// written to the WAL, and so before the standby can have it.
		lines := append(append([]string(nil), list1...), "@standby"+string(rune('a'+i))+".example")
		first := ""
		if i%2 == 1 {
			first = "SET LOCAL synchronous_commit = off;"
		}
		f.setWith(t, first, lines...)
		took := f.hasText(t, 2*time.Second, lines...)
		t.Logf("change %d on the primary (%s): in the files %v after its commit, read from the standby", i+1, first, took)
	}

	// The standby alone.
	f2 := &fixture{pg: f.pg, db: f.db, cfg: scfg, dir: t.TempDir()}
	f2.file = f2.dir + "/badsenders"
	r2 := f2.watch(t, WatchConfig{Interval: 300 * time.Millisecond, RetryMin: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	e := r2.wait(t, 0, 10*time.Second, "refused LISTEN", func(e Event) bool { return e.Kind == EventDisconnected && e.Role == RoleListen })
	if !errors.Is(e.Err, ErrStandby) {
		t.Errorf("LISTEN on a standby: %v, want ErrStandby", e.Err)
	}
	r2.wait(t, 0, 10*time.Second, "first sync", isSync)
	lines := append(append([]string(nil), list1...), "@interval.example")
	f.set(t, lines...)
	f2.hasText(t, 5*time.Second, lines...)
	time.Sleep(500 * time.Millisecond)
	n := 0
	for _, e := range r2.since(0) {
		if e.Kind == EventDisconnected {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the refused LISTEN was reported %d times, want once", n)
	}
}
