package pgsync

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// testOnlySyncs counts the syncs a watch starts, so tests know that one ran even when it
// reported nothing (a failure already reported).
var testOnlySyncs atomic.Int64

// closeTimeout bounds the goodbye to a server that may be gone.
const closeTimeout = 2 * time.Second

// WatchConfig is what [Watch] keeps in step.
type WatchConfig struct {
	DB       *Config // where the query runs: the primary, or a replica (a hot standby)
	Listen   *Config // where LISTEN runs: the primary (a standby refuses LISTEN); nil: DB
	Query    string
	File     string // the rules text; its CDB is File.cdb
	Channel  string // LISTEN channel
	Interval time.Duration
	Timeout  time.Duration // bounds a connect, a sync, and the wait for a replica to catch up
	Options
	// Retry bounds the waits between attempts after a failure: the first is RetryMin,
	// each next one twice as long, up to RetryMax (defaults 250 ms and 30 s).
	RetryMin, RetryMax time.Duration
	// Report is told what happens, once per sync and per change of state: a failure that
	// repeats is told once, not at every retry. It is called from one goroutine at a time.
	Report func(Event)
}

// EventKind names what an [Event] reports.
type EventKind string

const (
	EventConnected    EventKind = "connected"    // a connection is up (again, after Down)
	EventDisconnected EventKind = "disconnected" // a connection failed or was lost; retrying
	EventSync         EventKind = "sync"         // a sync ran (Result), or failed (Err)
)

// Role says which of a watch's two connections an event is about.
type Role string

const (
	RoleQuery  Role = "query"  // runs the syncs' query
	RoleListen Role = "listen" // LISTENs for NOTIFY
)

// Trigger says why a sync ran.
type Trigger string

const (
	TriggerStart    Trigger = "start"    // the first sync, once LISTEN is in place (or failed)
	TriggerConnect  Trigger = "connect"  // LISTEN (again) after the first sync: a NOTIFY may have been missed
	TriggerNotify   Trigger = "notify"   // a NOTIFY on the channel
	TriggerInterval Trigger = "interval" // the periodic full sync
	TriggerRetry    Trigger = "retry"    // again after a failure
)

// Event is one thing a watch reports.
type Event struct {
	Kind     EventKind
	Role     Role    // EventConnected, EventDisconnected
	Trigger  Trigger // EventSync
	Result   Result  // EventSync
	Err      error   // a failed sync, or why the connection is down
	Version  string  // the rules version of the list in place
	Down     time.Duration
	Attempts int // EventConnected after an outage: how long it lasted and the failed attempts
}

// Watch keeps cfg.File in step with the query until ctx is done, then returns. A
// listener LISTENs on cfg.Channel (on cfg.Listen, the primary: a standby cannot LISTEN);
// every NOTIFY triggers a sync, and notifications that arrive during a sync trigger one
// more, not one each. When the query runs on a standby, a sync triggered by a NOTIFY
// first waits until the standby has replayed the primary's WAL up to where it was when
// the NOTIFY arrived, so that it reads the change. A sync also runs at the start (once
// LISTEN is in place, or after at most 5 s), every cfg.Interval, and whenever the listener
// (re)connects after that, when a NOTIFY may have been missed.
//
// A lost or refused connection is retried with capped exponential backoff while the files
// in place stay as they are; a failed query is retried the same way. A bad row or an empty
// result waits for the next NOTIFY or interval: retrying changes nothing until the data
// does. Only a sync that succeeds touches the files.
func Watch(ctx context.Context, cfg WatchConfig) {
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 250 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(30*time.Second, cfg.RetryMin)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	if cfg.Listen == nil {
		cfg.Listen = cfg.DB
	}
	w := &watcher{cfg: cfg, kicked: make(chan struct{}, 1), ready: make(chan struct{})}
	w.version, _ = currentVersion(cfg.File)
	var wg sync.WaitGroup
	wg.Go(func() { w.listen(ctx) })
	w.run(ctx)
	wg.Wait()
}

type watcher struct {
	cfg WatchConfig

	mu      sync.Mutex // reports, version, and the pending notification
	version string
	pending struct {
		trigger Trigger
		lsn     string // the primary's WAL position at the NOTIFY
	}
	kicked  chan struct{} // a pending trigger
	ready   chan struct{} // closed after the listener's first attempt
	started atomic.Bool   // the syncer has begun
}

// readyWait bounds the first sync's wait for the listener's first attempt.
const readyWait = 5 * time.Second

func (w *watcher) report(e Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e.Version = w.version
	if w.cfg.Report != nil {
		w.cfg.Report(e)
	}
}

// kick asks for a sync; lsn (when not "") is the primary's WAL position it must see.
func (w *watcher) kick(t Trigger, lsn string) {
	w.mu.Lock()
	if w.pending.trigger == "" || t == TriggerNotify {
		w.pending.trigger = t
	}
	if lsn != "" {
		w.pending.lsn = lsn // later notifications have later positions
	}
	w.mu.Unlock()
	select {
	case w.kicked <- struct{}{}:
	default:
	}
}

func (w *watcher) take() (Trigger, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, lsn := w.pending.trigger, w.pending.lsn
	w.pending.trigger, w.pending.lsn = "", ""
	return t, lsn
}

// backoff is the wait after each failure in a row: doubling from min to max, with a
// little jitter.
type backoff struct {
	min, max, next time.Duration
}

func (b *backoff) wait() time.Duration {
	if b.next == 0 {
		b.next = b.min
	}
	d := b.next
	b.next = min(2*b.next, b.max)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

func (b *backoff) reset() { b.next = 0 }

// outage reports a connection's failures once and its return.
type outage struct {
	role     Role
	since    time.Time
	attempts int
}

func (w *watcher) down(o *outage, err error) {
	o.attempts++
	if o.since.IsZero() {
		o.since, o.attempts = time.Now(), 0
		w.report(Event{Kind: EventDisconnected, Role: o.role, Err: err})
	}
}

func (w *watcher) up(o *outage) {
	e := Event{Kind: EventConnected, Role: o.role}
	if !o.since.IsZero() {
		e.Down, e.Attempts = time.Since(o.since), o.attempts+1
	}
	*o = outage{role: o.role}
	w.report(e)
}

// listen keeps a connection LISTENing and kicks a sync for each NOTIFY, with the
// primary's WAL position when it arrived. An idle connection is pinged every interval,
// so that a peer gone without a word is noticed.
func (w *watcher) listen(ctx context.Context) {
	b := backoff{min: w.cfg.RetryMin, max: w.cfg.RetryMax}
	o := outage{role: RoleListen}
	first := true
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
		c, err := Connect(cctx, w.cfg.Listen)
		if err == nil {
			if err = c.Listen(cctx, w.cfg.Channel); err != nil {
				c.Close()
			}
		}
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			w.down(&o, err)
			if first {
				first = false
				close(w.ready)
			}
			sleep(ctx, b.wait())
			continue
		}
		w.up(&o)
		b.reset()
		if w.started.Load() {
			// The syncer has begun (it waits for the first attempt only so long): a
			// NOTIFY may have come before this LISTEN.
			w.kick(TriggerConnect, "")
		}
		if first {
			first = false
			close(w.ready)
		}
		err = w.notifications(ctx, c)
		c.Close()
		if ctx.Err() != nil {
			break
		}
		w.down(&o, err)
	}
	if first {
		close(w.ready)
	}
}

// notifications waits on a listening connection until it fails or ctx is done.
func (w *watcher) notifications(ctx context.Context, c *Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, w.cfg.Interval)
		got, err := c.Wait(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case got:
			c.Drain()
			lctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
			lsn, err := c.WALPosition(lctx)
			cancel()
			if err != nil && c.Lost() {
				w.kick(TriggerNotify, "")
				return err
			}
			w.kick(TriggerNotify, lsn)
		case wctx.Err() != nil && !c.Lost():
			pctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// run is the syncs: at the start, on a kick, every interval, and on retries.
func (w *watcher) run(ctx context.Context) {
	var conn *Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	b := backoff{min: w.cfg.RetryMin, max: w.cfg.RetryMax}
	o := outage{role: RoleQuery}
	lastErr := "" // the failure last reported, not reported again
	// The first sync waits for LISTEN to be in place, so that no change falls between
	// them, but not for long: a primary that cannot be reached must not hold up the list
	// from a replica.
	first := time.NewTimer(min(w.cfg.Timeout, readyWait))
	select {
	case <-w.ready:
	case <-first.C:
	case <-ctx.Done():
		return
	}
	first.Stop()
	w.started.Store(true)
	trigger, lsn := TriggerStart, ""
	full := time.NewTimer(w.cfg.Interval)
	defer full.Stop()
	retry := time.NewTimer(0)
	retry.Stop()
	defer retry.Stop()
	for {
		if trigger != "" {
			full.Reset(w.cfg.Interval)
			retry.Stop()
			again := w.sync(ctx, &conn, &o, &lastErr, trigger, lsn)
			if ctx.Err() != nil {
				return
			}
			if again {
				retry.Reset(b.wait())
			} else {
				b.reset()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kicked:
			trigger, lsn = w.take()
		case <-full.C:
			trigger, lsn = TriggerInterval, ""
		case <-retry.C:
			trigger, lsn = TriggerRetry, ""
		}
	}
}

// sync runs one sync on the query connection, (re)connecting it first when needed; again
// says to retry after a backoff.
func (w *watcher) sync(ctx context.Context, conn **Conn, o *outage, lastErr *string, trigger Trigger, lsn string) (again bool) {
	fresh := *conn == nil
	if *conn == nil {
		cctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
		c, err := Connect(cctx, w.cfg.DB)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				w.down(o, err)
			}
			return true
		}
		*conn = c
		w.up(o)
	}
	c := *conn
	testOnlySyncs.Add(1)
	if lsn != "" {
		// On a standby, wait until it has replayed the change; if it lags more than the
		// timeout, sync all the same (the next interval catches up). A failure here is
		// the query's too, below.
		rctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
		c.WaitReplay(rctx, lsn)
		cancel()
	}
	sctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	res, err := Sync(sctx, c, w.cfg.Query, w.cfg.File, w.cfg.Options)
	w.mu.Lock()
	w.version = res.Version
	w.mu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	if err == nil {
		*lastErr = ""
		w.report(Event{Kind: EventSync, Trigger: trigger, Result: res})
		return false
	}
	var qe *QueryError
	isQuery := errors.As(err, &qe)
	if isQuery && (c.Lost() || sctx.Err() != nil) {
		// The connection went during the query, or the query hung (a dead peer; a query
		// cut off by the timeout leaves the connection in no known state): start again on
		// a new one. One that had been idle since an earlier sync (the server restarted
		// meanwhile) is replaced at once, not after a backoff.
		c.Close()
		*conn = nil
		if !fresh && ctx.Err() == nil {
			return w.sync(ctx, conn, o, lastErr, trigger, lsn)
		}
		w.down(o, err)
		return true
	}
	if msg := err.Error(); msg != *lastErr {
		*lastErr = msg
		w.report(Event{Kind: EventSync, Trigger: trigger, Result: res, Err: err})
	}
	var re *RowError
	return isQuery || !errors.As(err, &re) && !errors.Is(err, ErrEmpty)
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
