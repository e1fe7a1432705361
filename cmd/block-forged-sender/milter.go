package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	lib "github.com/d--j/go-milter"

	"block-forged-sender/internal/address"
	"block-forged-sender/internal/milter"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/rules"
)

const milterHelp = `usage: block-forged-sender milter --listen unix:PATH|inet:PORT@HOST [flags]

A milter daemon for Postfix (smtpd_milters) and Sendmail (INPUT_MAIL_FILTER), with the same
rules, header scanner and policy as the qmail modes. The envelope sender is judged at MAIL
FROM, the header sender addresses at the end of the header: a match is refused with
"550 5.7.1 <reason>", an internal fault with a temporary "451 4.7.1" (or accepted, with
--fail-open). Authenticated sessions ({auth_authen}) and --trusted-networks pass unchecked.
One daemon serves every client: --allow holds for all of them, and the per-client settings
of the qmail modes (RELAYCLIENT, BFS_TRUSTED) have no meaning here; use rules exceptions
with client= and rcpt= scopes instead.

The rules are reloaded when the text or its CDB changes (checked at most once a second)
and on SIGHUP; a list that fails to load leaves the old one in use. SIGTERM and SIGINT stop
accepting connections and finish the messages in flight.
`

// milterFlags holds the milter's own settings.
type milterFlags struct {
	listen, metricsListen string
	failOpen              bool
	trustedNets           []netip.Prefix
	socketMode            string
	shutdownWait          time.Duration
	maxHeader             int
}

// runMilter runs the milter daemon until SIGTERM or SIGINT.
func runMilter(args []string, e env, std stdio) int {
	fs := newFlagSet("milter", milterHelp, std.err)
	fs.policyFlags()
	c := fs.cfg
	var mf milterFlags
	fs.StringVar(&mf.listen, "listen", "", "the milter socket: unix:PATH, inet:PORT@HOST or inet:HOST:PORT (required)")
	fs.StringVar(&mf.metricsListen, "metrics-listen", "", "serve Prometheus metrics at http://`ADDR`/metrics (e.g. 127.0.0.1:9317)")
	fs.BoolVar(&mf.failOpen, "fail-open", false, "accept a message on an internal fault instead of a temporary 451")
	fs.Func("trusted-networks", "client `CIDRS` that pass unchecked, like Postfix's mynetworks (comma or space separated)", func(s string) error {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				a, aerr := netip.ParseAddr(f)
				if aerr != nil {
					return err
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			mf.trustedNets = append(mf.trustedNets, p.Masked())
		}
		return nil
	})
	fs.StringVar(&mf.socketMode, "socket-mode", "0660", "permissions of a unix socket (the MTA's user must be able to connect)")
	fs.DurationVar(&mf.shutdownWait, "shutdown-wait", 30*time.Second, "how long SIGTERM waits for messages in flight")
	fs.IntVar(&mf.maxHeader, "max-header", 8<<20, "largest header section (and recipient list) held per message, in `bytes`; larger is a temporary failure")
	fs.BoolVar(&c.syslog, "syslog", false, "log to syslog (facility mail, tag bfs) instead of stderr")
	if hasHelp(args) {
		fs.SetOutput(std.out)
		fs.Usage()
		return 0
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(std.err, "block-forged-sender milter: "+format+"\n", a...)
		return 111
	}
	if err := fs.parse(args, e); err != nil {
		return fail("%v", err)
	}
	if mf.listen == "" {
		return fail("--listen is required")
	}
	mode, err := strconv.ParseUint(mf.socketMode, 8, 32)
	if err != nil {
		return fail("--socket-mode %q: %v", mf.socketMode, err)
	}
	lg := newLogger(c, std.err)
	lib.LogWarning = func(format string, v ...any) {
		lg.Warn("", "milter", fmt.Sprintf(format, v...))
	}

	d, err := newMilterDecider(c, lg)
	if err != nil {
		return fail("%v", err)
	}
	ln, err := milter.Listen(mf.listen)
	if err != nil {
		return fail("%v", err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		if err := os.Chmod(ul.Addr().String(), os.FileMode(mode)); err != nil {
			return fail("%v", err)
		}
	}
	metrics := &milter.Metrics{}
	srv := milter.NewServer(milter.Config{
		Decider:     d,
		TrustedNets: mf.trustedNets,
		FailOpen:    mf.failOpen,
		MaxHeader:   mf.maxHeader,
		Log:         func(en milter.Entry) { logMilterEntry(lg, c, en) },
		Metrics:     metrics,
	})
	if mf.metricsListen != "" {
		mln, err := net.Listen("tcp", mf.metricsListen)
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
				d.reload(true) // logs its outcome
				continue
			}
			lg.Info("", "event", "shutdown", "signal", sig.String())
			ctx, cancel := context.WithTimeout(context.Background(), mf.shutdownWait)
			srv.Shutdown(ctx)
			cancel()
			return
		}
	}()
	lg.Info("", "event", "start", "listen", mf.listen, "rules", d.source(), "version", version)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !isShutdown(err) {
		return fail("%v", err)
	}
	<-stopped
	d.close()
	return 0
}

func isShutdown(err error) bool {
	return errors.Is(err, milter.ErrShuttingDown)
}

// logMilterEntry writes the one line for a message, with the MTA's queue id.
func logMilterEntry(lg *slog.Logger, c *config, en milter.Entry) {
	attrs := []slog.Attr{slog.String("queue", en.QueueID), slog.String("verdict", string(en.Verdict)), slog.String("stage", string(en.Stage))}
	if en.Trusted {
		t := "network"
		if en.AuthUser != "" {
			t = "auth"
		}
		attrs = append(attrs, slog.String("trusted", t))
	}
	r := en.Result
	if r.Rule != "" {
		if !r.Reject {
			attrs = append(attrs, slog.String("mode", c.mode), slog.String("monitor", "would reject"))
		}
		reason := r.Reason
		if reason == "" {
			reason = milter.DefaultReason
		}
		attrs = append(attrs, slog.String("reason", reason), slog.String("rule", r.Rule), slog.String("matched", r.Source+":"+r.Address))
	}
	sender := en.Sender
	if sender == "" {
		sender = "<>"
	}
	attrs = append(attrs, slog.String("sender", sender))
	if len(en.Recipients) > 0 {
		attrs = append(attrs, slog.String("rcpt", strings.Join(en.Recipients[:min(len(en.Recipients), maxLogFrom)], ",")))
	}
	if en.ClientIP.IsValid() {
		attrs = append(attrs, slog.String("client", en.ClientIP.String()))
	}
	if en.ClientHost != "" {
		attrs = append(attrs, slog.String("host", en.ClientHost))
	}
	if en.AuthUser != "" {
		attrs = append(attrs, slog.String("auth", en.AuthUser))
	}
	attrs = append(attrs, slog.Duration("duration", en.Elapsed.Round(time.Microsecond)))
	if en.Err != nil {
		attrs = append(attrs, slog.String("error", en.Err.Error()))
	}
	lg.LogAttrs(context.Background(), slog.LevelInfo, "", attrs...)
}

// milterDecider gives the milter's verdicts with the policy, on a rules list that it
// reloads when the files change. Decide runs on many goroutines at once.
type milterDecider struct {
	cfg *config
	lg  *slog.Logger

	mu      sync.RWMutex // held for reading while a verdict uses set
	set     *rules.Set
	info    rules.LoadInfo
	stamp   string    // the files' identities when set was loaded
	failed  string    // the files' identities when a reload last failed: not retried
	checked time.Time // when stamp was last compared
}

func newMilterDecider(c *config, lg *slog.Logger) (*milterDecider, error) {
	d := &milterDecider{cfg: c, lg: lg}
	if err := d.reload(true); err != nil {
		return nil, err
	}
	return d, nil
}

// filesStamp identifies the rules files as they are now: a change to either (an edit, a
// new CDB renamed into place) changes it.
func (d *milterDecider) filesStamp() string {
	var b strings.Builder
	for _, p := range []string{d.cfg.rules, d.cfg.rules + ".cdb"} {
		if fi, err := os.Stat(p); err == nil {
			st, _ := fi.Sys().(*syscall.Stat_t)
			var ino uint64
			if st != nil {
				ino = st.Ino
			}
			fmt.Fprintf(&b, "%d/%d/%d;", ino, fi.Size(), fi.ModTime().UnixNano())
		} else {
			b.WriteString("-;")
		}
	}
	return b.String()
}

// reload loads the rules again, when forced or when the files changed, and logs the
// outcome. On failure the list in use stays (a list is swapped in only once it is fully
// loaded), and the same files are not tried again until they change or SIGHUP comes.
func (d *milterDecider) reload(force bool) error {
	stamp := d.filesStamp()
	d.mu.RLock()
	skip := d.set != nil && (stamp == d.stamp || stamp == d.failed)
	d.mu.RUnlock()
	if skip && !force {
		return nil
	}
	set, info, err := rules.Load(d.cfg.rules)
	if err != nil {
		d.mu.Lock()
		d.failed = stamp
		d.mu.Unlock()
		d.lg.Info("", "event", "reload", "error", err.Error(), "rules", d.source())
		return err
	}
	d.mu.Lock()
	old := d.set
	d.set, d.info, d.stamp, d.failed = set, info, d.filesStamp(), ""
	d.mu.Unlock()
	if old != nil {
		old.Close() // no verdict holds it: they hold mu for reading
		attrs := []any{"event", "reload", "rules", describeLoad(info)}
		if w := loadWarning(info); w != "" {
			attrs = append(attrs, "warning", w)
		}
		d.lg.Info("", attrs...)
	} else if w := loadWarning(info); w != "" {
		d.lg.Info("", "warning", w)
	}
	return nil
}

// maybeReload compares the files at most once a second.
func (d *milterDecider) maybeReload() {
	d.mu.Lock()
	due := time.Since(d.checked) >= time.Second
	if due {
		d.checked = time.Now()
	}
	d.mu.Unlock()
	if due {
		d.reload(false) // on failure the list in use stays; reload logged why
	}
}

// source says where the list in use came from.
func (d *milterDecider) source() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return describeLoad(d.info)
}

func (d *milterDecider) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.set != nil {
		d.set.Close()
		d.set = nil
	}
}

// Decide is the policy's verdict on what the milter knows of a message.
func (d *milterDecider) Decide(in *milter.Input) (milter.Result, error) {
	d.maybeReload()
	c := d.cfg
	pin := policy.Input{
		Allow:       c.allow,
		DefaultHost: func() (string, error) { return milterDefaultHost(c, in.MTAHost) },
	}
	pin.Client.ClientIP = in.ClientIP.Unmap()
	pin.Client.ClientHost = in.ClientHost
	if in.Sender == "" {
		pin.NullSender = true
	} else {
		a, err := address.ParseAddr(in.Sender)
		if err != nil {
			return milter.Result{}, fmt.Errorf("sender %q: %w", in.Sender, err)
		}
		pin.Sender = a
	}
	tooMany := false
	if in.Stage == milter.StageMail {
		pin.Client.RecipientsUnknown = true
	} else {
		for _, r := range in.Recipients {
			if a, err := address.ParseAddr(r); err == nil {
				pin.Recipients = append(pin.Recipients, a.Canonical())
			}
		}
		var err error
		pin.Headers, _, tooMany, err = scanHeader(bytes.NewReader(in.Header), io.Discard, c)
		if err != nil {
			return milter.Result{}, err
		}
	}
	d.mu.RLock()
	dec, err := policy.Decide(pin, d.set)
	d.mu.RUnlock()
	if err != nil {
		return milter.Result{}, err
	}
	if dec.Verdict != policy.Reject {
		if tooMany {
			return milter.Result{}, errTooManyCandidates
		}
		return milter.Result{}, nil
	}
	r := milter.Result{
		Reject:  c.mode != modeMonitor,
		Reason:  dec.Reason(),
		Source:  dec.Decider.Source,
		Address: dec.Decider.Address,
	}
	if rule := dec.Rule(); rule != nil {
		r.Rule = rule.File + ":" + strconv.Itoa(rule.Line)
	}
	return r, nil
}

// milterDefaultHost qualifies unqualified addresses in milter mode: --default-host, else
// the MTA's host name from its j macro (Postfix's $myhostname, which its myorigin defaults
// to; Sendmail's $j, with which it qualifies the sender), else this machine's host name.
func milterDefaultHost(c *config, mtaHost string) (string, error) {
	if c.defaultHost != "" {
		return c.defaultHost, nil
	}
	if mtaHost != "" {
		return mtaHost, nil
	}
	return os.Hostname()
}
