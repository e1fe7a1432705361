package pgsync

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ApplicationName is what the sync's connections say they are (pg_stat_activity's
// application_name), unless the DSN sets one.
const ApplicationName = "block-forged-sender-sync"

// Config is a parsed DSN.
type Config = pgx.ConnConfig

// Conn is a PostgreSQL connection: the [Source] of a sync, and the LISTEN of a watch.
type Conn struct {
	c *pgx.Conn
}

// ParseDSN checks a libpq connection string ("host=/run/postgresql dbname=mail") or URL
// ("postgresql://sync@db1/mail?sslmode=verify-full"); what it leaves out comes from the
// PG* environment variables and ~/.pgpass, as with psql. Its error never holds the
// password.
func ParseDSN(dsn string) (*Config, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgsync: %w", err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = ApplicationName
	}
	return cfg, nil
}

// Describe names the database of cfg for a log line, without its password.
func Describe(cfg *Config) string {
	host := cfg.Host
	if !strings.HasPrefix(host, "/") {
		host = fmt.Sprintf("%s:%d", host, cfg.Port)
	}
	return fmt.Sprintf("%s@%s/%s", cfg.User, host, cfg.Database)
}

// Connect opens a connection.
func Connect(ctx context.Context, cfg *Config) (*Conn, error) {
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgsync: %w", err)
	}
	return &Conn{c: c}, nil
}

// Rows runs query with the simple query protocol, in which every value comes as text
// (so "SELECT '@' || domain" and a column of any type give their text), and calls fn with
// the first column of each row.
func (c *Conn) Rows(ctx context.Context, query string, fn func(col []byte, null bool) error) error {
	rows, err := c.c.Query(ctx, query, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		vals := rows.RawValues()
		if len(vals) == 0 {
			return errors.New("the query returns no column")
		}
		if err := fn(vals[0], vals[0] == nil); err != nil {
			return err
		}
	}
	rows.Close()
	return rows.Err()
}

// ErrStandby is LISTEN refused by a hot standby: NOTIFY exists only on the primary.
var ErrStandby = errors.New("the database is a standby, which cannot LISTEN")

// Listen subscribes the connection to NOTIFY on channel.
func (c *Conn) Listen(ctx context.Context, channel string) error {
	if _, err := c.c.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "25006" { // read_only_sql_transaction
			return fmt.Errorf("pgsync: listen %s: %w (%v)", channel, ErrStandby, err)
		}
		return fmt.Errorf("pgsync: listen %s: %w", channel, err)
	}
	return nil
}

// Wait waits for a notification until ctx is done: got says one came. An error with ctx
// not done means the connection is lost.
func (c *Conn) Wait(ctx context.Context) (got bool, err error) {
	n, err := c.c.WaitForNotification(ctx)
	return n != nil, err
}

// Drain discards the notifications already received (during a query, say): the sync
// about to run covers them.
func (c *Conn) Drain() int {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	for {
		if got, _ := c.Wait(done); !got {
			return n
		}
		n++
	}
}

// Lost reports whether the connection is closed (the server went away, a fatal error).
func (c *Conn) Lost() bool { return c.c.IsClosed() }

// Close closes the connection.
func (c *Conn) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	c.c.Close(ctx)
}

// Ping checks that the connection still works.
func (c *Conn) Ping(ctx context.Context) error { return c.c.Ping(ctx) }

// WALPosition returns the server's WAL insert position (pg_current_wal_insert_lsn),
// which is past the commit record of every transaction whose notifications have been
// delivered, with synchronous_commit off too; "" on a standby. (The write position,
// pg_current_wal_lsn, may still be short of an asynchronous commit.)
func (c *Conn) WALPosition(ctx context.Context) (string, error) {
	var lsn *string
	err := c.c.QueryRow(ctx, "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn()::text END",
		pgx.QueryExecModeSimpleProtocol).Scan(&lsn)
	if err != nil || lsn == nil {
		return "", err
	}
	return *lsn, nil
}

// replayPoll is how often a standby's replay position is read while waiting for it.
const replayPoll = 20 * time.Millisecond

// WaitReplay waits until the server has the transactions up to the primary's WAL
// position lsn: at once on a primary, on a standby when it has replayed that far. It
// gives up when ctx is done.
func (c *Conn) WaitReplay(ctx context.Context, lsn string) error {
	for {
		var ok *bool
		err := c.c.QueryRow(ctx, "SELECT NOT pg_is_in_recovery() OR pg_last_wal_replay_lsn() >= $1::pg_lsn",
			pgx.QueryExecModeSimpleProtocol, lsn).Scan(&ok)
		if err != nil {
			return err
		}
		if ok != nil && *ok {
			return nil
		}
		t := time.NewTimer(replayPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
