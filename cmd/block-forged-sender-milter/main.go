// Command block-forged-sender-milter is the milter daemon of block-forged-sender, for Postfix
// (smtpd_milters) and Sendmail (INPUT_MAIL_FILTER). "block-forged-sender milter" runs it. It
// is a program of its own because the milter library links crypto packages, whose 32 MiB
// BSS the per-message qmail program must not carry (qmail runs it under softlimit).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	lib "github.com/d--j/go-milter"

	"block-forged-sender/internal/cli"
	"block-forged-sender/internal/milter"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/rules"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const milterHelp = `usage: block-forged-sender milter --listen unix:PATH|inet:PORT@HOST [flags]

A milter daemon for Postfix (smtpd_milters) and Sendmail (INPUT_MAIL_FILTER), with the same
rules, header readings and policy as the qmail modes. The envelope sender is judged at MAIL
FROM, the header sender addresses as each field arrives, the verdict given at the end of
the header: a match is refused with "550 5.7.1 <reason>", a fault with a temporary
"451 4.7.1" (or accepted, with --fail-open). Authenticated sessions ({auth_authen}) and
--trusted-networks pass unchecked. One daemon serves every client: --allow holds for all of
them, and the per-client settings of the qmail modes (RELAYCLIENT, BFS_TRUSTED) have no
meaning here; use rules exceptions with client= and rcpt= scopes instead.

The rules are reloaded when the text or its CDB changes (checked at most once a second)
and on SIGHUP; a list that fails to load leaves the old one in use. SIGTERM and SIGINT stop
accepting connections and finish the messages in flight.
`

// flags holds the daemon's own settings.
type flags struct {
	cli.Policy
	listen, metricsListen string
	failOpen              bool
	trustedNets           []netip.Prefix
	socketMode            string
	shutdownWait          time.Duration
	maxHeader             int
}

func main() {
	cli.LimitMemory() // first: the administrator's softlimit bounds the heap
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr, os.Environ()))
}

// run runs the daemon until SIGTERM or SIGINT.
func run(args []string, e cli.Env, stdout, stderr io.Writer, environ []string) int {
	fs := cli.NewFlagSet("block-forged-sender milter", milterHelp)
	var f flags
	f.Policy.Register(fs, cli.DefaultRules)
	f.Policy.RegisterSyslog(fs)
	fs.StringVar(&f.DefaultHost, "default-host", "", "`HOST` that qualifies an unqualified address (default: the MTA's host name, macro j, as Postfix's myorigin is by default; else this machine's host name)")
	fs.StringVar(&f.listen, "listen", "", "the milter `SOCKET`: unix:PATH, inet:PORT@HOST or inet:HOST:PORT (required)")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics at http://`ADDR`/metrics (e.g. 127.0.0.1:9317)")
	fs.BoolVar(&f.failOpen, "fail-open", false, "accept a message on an internal fault instead of a temporary 451")
	fs.Func("trusted-networks", "client `CIDRS` that pass unchecked, like Postfix's mynetworks (comma or space separated)", func(s string) error {
		for _, field := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
			p, err := netip.ParsePrefix(field)
			if err != nil {
				a, aerr := netip.ParseAddr(field)
				if aerr != nil {
					return fmt.Errorf("%q is no network or address", field)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			f.trustedNets = append(f.trustedNets, p.Masked())
		}
		return nil
	})
	fs.StringVar(&f.socketMode, "socket-mode", "0660", "permissions of a unix socket, in octal `MODE` (the MTA's user must be able to connect)")
	fs.DurationVar(&f.shutdownWait, "shutdown-wait", 30*time.Second, "how long SIGTERM waits for messages in flight, a `DURATION`")
	fs.IntVar(&f.maxHeader, "max-header", 0, "obsolete and ignored (`BYTES`): the daemon no longer holds the header, only the sender field being read, up to --max-field")
	if cli.HasHelp(args) {
		fs.PrintHelp(stdout)
		return 0
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "block-forged-sender milter: "+format+"\n", a...)
		return 111
	}
	if err := fs.Parse(args, e); err != nil {
		return fail("%v", strings.TrimPrefix(err.Error(), "block-forged-sender milter: "))
	}
	if err := f.Policy.Check(fs.Name()); err != nil {
		return fail("%v", strings.TrimPrefix(err.Error(), "block-forged-sender milter: "))
	}
	if f.listen == "" {
		return fail("--listen is required")
	}
	mode, err := strconv.ParseUint(f.socketMode, 8, 32)
	if err != nil {
		return fail("--socket-mode %q: not an octal mode", f.socketMode)
	}
	lg := cli.NewLogger(stderr, f.Syslog)
	lib.LogWarning = func(format string, v ...any) {
		lg.Event(cli.LevelTempFail, "milter", fmt.Sprintf(format, v...))
	}

	reloader, err := rules.NewReloader(f.Rules)
	if err != nil {
		return fail("%v", err)
	}
	defer reloader.Close()
	src := &rulesSource{r: reloader, lg: lg}
	pc := f.Policy.Config(func() (string, error) { return defaultHost(&f, "") })
	pc.TrustedNetworks = f.trustedNets

	ln, err := milter.Listen(f.listen)
	if err != nil {
		return fail("%v", err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		if err := os.Chmod(ul.Addr().String(), os.FileMode(mode)); err != nil {
			return fail("%v", err)
		}
	}
	metrics := &milter.Metrics{RulesVersion: func() string { return reloader.Info().Version }}
	srv := milter.NewServer(milter.Config{
		Policy:      pc,
		Rules:       src,
		DefaultHost: func(mta string) (string, error) { return defaultHost(&f, mta) },
		MaxField:    f.MaxField,
		FailOpen:    f.failOpen,
		Log: func(en milter.Entry) {
			r := entryRecord(en, pc.Mode)
			info := reloader.Info()
			r.Rules = info.Version
			r.Warning = cli.LoadWarning(info)
			r.Log(lg)
		},
		Metrics: metrics,
	})
	if f.metricsListen != "" {
		mln, err := net.Listen("tcp", f.metricsListen)
		if err != nil {
			return fail("--metrics-listen: %v", err)
		}
		go metrics.Serve(mln)
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for sig := range sigs {
			if sig == syscall.SIGHUP {
				src.reload(true)
				continue
			}
			lg.Event(cli.LevelPass, "event", "shutdown", "signal", sig.String())
			ctx, cancel := context.WithTimeout(context.Background(), f.shutdownWait)
			srv.Shutdown(ctx)
			cancel()
			return
		}
	}()
	start := []string{"event", "start", "listen", f.listen, "rules", cli.DescribeLoad(reloader.Info()), "version", version}
	if w := cli.LoadWarning(reloader.Info()); w != "" {
		start = append(start, "warning", w)
	}
	if w := cli.UnknownWarning(fs, environ); w != "" {
		start = append(start, "warning", w)
	}
	if f.maxHeader != 0 {
		start = append(start, "warning", "--max-header (BFS_MAXHEADER) is obsolete and ignored: remove it")
	}
	lg.Event(cli.LevelPass, start...)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, milter.ErrShuttingDown) {
		return fail("%v", err)
	}
	<-stopped
	return 0
}

// rulesSource gives the milter the rules in use, reloaded when the files change (compared
// at most once a second, on a message's MAIL FROM look-up) and on SIGHUP, each outcome
// logged once.
type rulesSource struct {
	r  *rules.Reloader
	lg *cli.Logger
}

func (s *rulesSource) Acquire() (policy.Lookuper, func()) {
	if got, err := s.r.MaybeReload(); err != nil || got.Done {
		s.log(got, err)
	}
	set, release := s.r.Acquire()
	return set, release
}

func (s *rulesSource) reload(force bool) {
	got, err := s.r.Reload(force)
	s.log(got, err)
}

func (s *rulesSource) log(got rules.Reloaded, err error) {
	if err != nil {
		s.lg.Event(cli.LevelTempFail, "event", "reload", "error", err.Error(), "rules", cli.DescribeLoad(s.r.Info()))
		return
	}
	if !got.Done {
		return
	}
	kv := []string{"event", "reload", "rules", cli.DescribeLoad(got.Info)}
	if w := cli.LoadWarning(got.Info); w != "" {
		kv = append(kv, "warning", w)
	}
	s.lg.Event(cli.LevelPass, kv...)
}

// entryRecord is the log record of one message.
func entryRecord(en milter.Entry, mode policy.Mode) *cli.Record {
	r := &cli.Record{
		Session:    en.Session,
		Queue:      en.QueueID,
		Stage:      string(en.Stage),
		Verdict:    string(en.Verdict),
		Mode:       mode,
		Sender:     unbracket(en.Sender),
		HaveSender: true,
		Rcpts:      unbracketAll(en.Recipients),
		Host:       en.ClientHost,
		Auth:       en.AuthUser,
		MsgID:      en.MessageID,
		Duration:   en.Elapsed,
		Err:        en.Err,
	}
	if en.Decision.Verdict != "" {
		d := en.Decision
		r.Decision = &d
	}
	if en.ClientIP.IsValid() {
		r.Client = en.ClientIP.String()
	}
	return r
}

// unbracket is an envelope address as the MTA passes it (<a@b>, <> for the null sender)
// as the qmail modes log it: a@b, or "" for the null sender (logged as <>).
func unbracket(a string) string {
	if len(a) >= 2 && a[0] == '<' && a[len(a)-1] == '>' {
		return a[1 : len(a)-1]
	}
	return a
}

func unbracketAll(as []string) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = unbracket(a)
	}
	return out
}

// defaultHost qualifies unqualified addresses in milter mode: --default-host, else the
// MTA's host name (macro j: Postfix's $myhostname, its $myorigin unless set otherwise), else
// this machine's host name.
func defaultHost(f *flags, mtaHost string) (string, error) {
	if f.DefaultHost != "" {
		return f.DefaultHost, nil
	}
	if mtaHost != "" {
		return mtaHost, nil
	}
	return os.Hostname()
}
