// Command block-forged-sender-sync keeps a rules file in step with a PostgreSQL query, so
// that every MX host runs the same list: "block-forged-sender sync" runs it. It is a
// program of its own because the PostgreSQL driver links crypto packages, whose 32 MiB BSS
// the per-message qmail program must not carry (qmail runs it under softlimit).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"block-forged-sender/internal/cli"
	"block-forged-sender/internal/pgsync"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const syncHelp = `usage: block-forged-sender sync --dsn DSN --query SQL [--watch] RULESFILE
       (or --rules RULESFILE; every flag also from the environment, as BFS_DSN, BFS_QUERY...)

Makes the rules text RULESFILE and its compiled RULESFILE.cdb the result of a PostgreSQL
query: each row's first column is one line of the text (an entry, an exception, a comment
or a blank line), in the order of the rows (give the query an ORDER BY, so that every host
writes the same text). The whole list is checked as compile checks it; a row that is no
valid line is named, and nothing is replaced. The files are replaced only when the list
changed (the text differs from the one in place, or its CDB is not the one compiled from
it), atomically and so that no reader ever finds a text newer than its CDB. An empty
result does not replace a list that has entries, unless --allow-empty.

It prints one line: what it did (created, replaced, unchanged, kept), the rows and entries,
the rules version (the same on every host with the same list) and the time it took.

--watch keeps running: it LISTENs on --channel (on --listen-dsn, the primary, when --dsn
is a replica: a standby cannot LISTEN) and syncs again within a second or two of a NOTIFY
on it, once the replica has replayed the change; every --interval; and after a lost
connection comes back (retried with backoff up to 30s, the files in place kept meanwhile).
A failure is logged once, not at every retry, and never replaces the list in place.
SIGTERM and SIGINT end it.

DSN is a libpq connection string ("host=/run/postgresql dbname=mail user=bfs") or URL
("postgresql://bfs@db1.example/mail?sslmode=verify-full"); the PG* environment variables
and ~/.pgpass fill in what it leaves out, as for psql.

Exit 0: done (changed or not); with --watch, after SIGTERM or SIGINT. Exit 2: usage.
Exit 111: the list was not synced (the files in place are kept).
`

// flags are the program's settings.
type flags struct {
	dsn, listenDSN    string
	rules             string
	query, channel    string
	watch, allowEmpty bool
	interval, timeout time.Duration
	syslog            bool
}

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr, os.Environ()))
}

func run(args []string, e cli.Env, stdout, stderr io.Writer, environ []string) int {
	fs := cli.NewFlagSet("block-forged-sender sync", syncHelp)
	var f flags
	fs.StringVar(&f.dsn, "dsn", "", "the database: a libpq connection string or postgresql:// URL, `DSN` (required)")
	fs.StringVar(&f.listenDSN, "listen-dsn", "", "with --watch, LISTEN on this `DSN`, the primary, when --dsn is a replica (a standby cannot LISTEN); default --dsn")
	fs.StringVar(&f.query, "query", "", "the `SQL` whose rows' first column are the rules lines (required)")
	fs.StringVar(&f.rules, "rules", "", "the rules text `FILE` to write (its CDB is FILE.cdb), when not given as the RULESFILE argument")
	fs.BoolVar(&f.watch, "watch", false, "keep running: sync on every NOTIFY, every --interval, and after a lost connection returns")
	fs.StringVar(&f.channel, "channel", "block_forged_sender", "the LISTEN channel of --watch, a `NAME`")
	fs.DurationVar(&f.interval, "interval", 5*time.Minute, "with --watch, a full sync this often even without a NOTIFY, a `DURATION`")
	fs.BoolVar(&f.allowEmpty, "allow-empty", false, "let an empty result replace a list that has entries")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "give up a connection attempt or a sync after this `DURATION`")
	fs.BoolVar(&f.syslog, "syslog", false, "log to syslog (facility mail, tag bfs) instead of stderr")
	if cli.HasHelp(args) {
		fs.PrintHelp(stdout)
		return 0
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "block-forged-sender sync: "+format+"\n", a...)
		fmt.Fprint(stderr, "usage: block-forged-sender sync --dsn DSN --query SQL [--watch] RULESFILE (see --help)\n")
		return 2
	}
	if err := fs.Parse(args, e); err != nil {
		return usage("%s", strings.TrimPrefix(err.Error(), "block-forged-sender sync: "))
	}
	file := f.rules
	if fs.NArg() == 1 {
		file = fs.Arg(0)
	}
	switch {
	case fs.NArg() > 1:
		return usage("one RULESFILE, please (got %d arguments)", fs.NArg())
	case file == "":
		return usage("which rules file? give RULESFILE (or --rules, BFS_RULES)")
	case fs.NArg() == 1 && f.rules != "" && f.rules != fs.Arg(0):
		return usage("RULESFILE %s and --rules %s (BFS_RULES) differ", fs.Arg(0), f.rules)
	case f.dsn == "":
		return usage("--dsn (BFS_DSN) is required")
	case strings.TrimSpace(f.query) == "":
		return usage("--query (BFS_QUERY) is required")
	case f.channel == "":
		return usage("--channel must not be empty")
	case f.interval <= 0:
		return usage("--interval %s: must be positive", f.interval)
	case f.timeout <= 0:
		return usage("--timeout %s: must be positive", f.timeout)
	case strings.HasSuffix(file, ".cdb"):
		return usage("RULESFILE %s: name the text; its CDB is RULESFILE.cdb", file)
	}
	db, err := pgsync.ParseDSN(f.dsn)
	if err != nil {
		return usage("--dsn: %v", strings.TrimPrefix(err.Error(), "pgsync: "))
	}
	listen := db
	if f.listenDSN != "" {
		if listen, err = pgsync.ParseDSN(f.listenDSN); err != nil {
			return usage("--listen-dsn: %v", strings.TrimPrefix(err.Error(), "pgsync: "))
		}
	}
	warning := cli.UnknownWarning(fs, environ)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	got := make(chan os.Signal, 1)
	go func() {
		sig := <-sigs
		got <- sig
		cancel()
	}()
	opt := pgsync.Options{AllowEmpty: f.allowEmpty}
	if !f.watch {
		return once(ctx, db, f, file, opt, warning, stdout, stderr)
	}

	lg := cli.NewLogger(stderr, f.syslog)
	where := map[pgsync.Role]string{pgsync.RoleQuery: pgsync.Describe(db), pgsync.RoleListen: pgsync.Describe(listen)}
	current, verr := pgsync.CurrentVersion(file)
	start := []slog.Attr{slog.String("event", "start"), slog.String("file", file), slog.String("database", where[pgsync.RoleQuery]),
		slog.String("listen", where[pgsync.RoleListen]), slog.String("channel", f.channel), slog.String("interval", f.interval.String()), slog.String("version", version),
		rulesAttr(current)}
	if verr != nil {
		start = append(start, slog.String("warning", "the list in place cannot be read: "+verr.Error()))
	}
	if warning != "" {
		start = append(start, slog.String("warning", warning))
	}
	lg.Log(cli.LevelPass, start...)
	last := current
	pgsync.Watch(ctx, pgsync.WatchConfig{
		DB: db, Listen: listen, Query: f.query, File: file, Channel: f.channel,
		Interval: f.interval, Timeout: f.timeout, Options: opt,
		Report: func(ev pgsync.Event) {
			last = ev.Version
			switch ev.Kind {
			case pgsync.EventSync:
				level, attrs := syncLine(ev.Trigger, ev.Result, file, ev.Err)
				lg.Log(level, attrs...)
			case pgsync.EventConnected:
				a := []slog.Attr{slog.String("event", "connected"), slog.String("conn", string(ev.Role)), slog.String("database", where[ev.Role]), rulesAttr(ev.Version)}
				if ev.Down > 0 {
					a = append(a, slog.String("down", cli.Millis(ev.Down)), slog.Int("attempts", ev.Attempts))
				}
				lg.Log(cli.LevelPass, a...)
			case pgsync.EventDisconnected:
				lg.Log(cli.LevelTempFail, slog.String("event", "disconnected"), slog.String("conn", string(ev.Role)), slog.String("database", where[ev.Role]),
					rulesAttr(ev.Version), slog.String("error", errText(ev.Err)), slog.String("retry", "with backoff up to 30s; the files in place are kept"))
			}
		},
	})
	lg.Log(cli.LevelPass, slog.String("event", "shutdown"), slog.String("signal", (<-got).String()), rulesAttr(last))
	return 0
}

// once runs one sync and prints its line: on stdout when it is done, on stderr (with the
// exit code 111) when not.
func once(ctx context.Context, db *pgsync.Config, f flags, file string, opt pgsync.Options, warning string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	start := time.Now()
	var res pgsync.Result
	conn, err := pgsync.Connect(ctx, db)
	if err == nil {
		res, err = pgsync.Sync(ctx, conn, f.query, file, opt)
		conn.Close()
	} else {
		res.Action = pgsync.Kept
		res.Version, _ = pgsync.CurrentVersion(file)
	}
	res.Duration = time.Since(start)
	level, attrs := syncLine("", res, file, err)
	if warning != "" {
		attrs = append(attrs, slog.String("warning", warning))
	}
	out := stdout
	if err != nil {
		out = stderr
	}
	cli.NewLogger(out, f.syslog).Log(level, attrs...)
	if err != nil {
		return 111
	}
	return 0
}

// syncLine is the log line of one sync.
func syncLine(trigger pgsync.Trigger, res pgsync.Result, file string, err error) (slog.Level, []slog.Attr) {
	a := []slog.Attr{slog.String("event", "sync")}
	if trigger != "" {
		a = append(a, slog.String("trigger", string(trigger)))
	}
	a = append(a, slog.String("did", string(res.Action)), slog.Int("rows", res.Rows), slog.Int("entries", res.Entries),
		rulesAttr(res.Version), slog.String("file", file), slog.String("duration", cli.Millis(res.Duration)))
	if err == nil {
		return cli.LevelPass, a
	}
	return cli.LevelTempFail, append(a, slog.String("error", errText(err)))
}

// errText is an error for the log, with what the administrator can do about it.
func errText(err error) string {
	switch {
	case errors.Is(err, pgsync.ErrEmpty):
		return err.Error() + " (kept; --allow-empty lets an empty result replace it)"
	case errors.Is(err, pgsync.ErrStandby):
		return err.Error() + " (give --listen-dsn the primary; until then the list is synced every --interval)"
	}
	return err.Error()
}

// rulesAttr is the rules version of the list in place, "none" before the first sync.
func rulesAttr(v string) slog.Attr {
	if v == "" {
		v = "none"
	}
	return slog.String("rules", v)
}
