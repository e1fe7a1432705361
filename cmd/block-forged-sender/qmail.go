package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"block-forged-sender/internal/cli"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/qmail"
)

const filterHelp = `usage: block-forged-sender filter [flags]

A filter for qmail-qfilter: reads the message on fd 0 and writes it, byte for byte, to
fd 1. The envelope is read from fd 3 when it is open (qmail-queue form), else from
QMAILUSER, QMAILHOST and QMAILRCPTS. Exit 0: pass. Exit 31: rejected (554). Exit 82
after writing the reason to fd 6: rejected with the reason shown to the client (qmail with
the custom-error patch). Any other exit is a temporary failure (451): 51 a sender field
over --max-field, 52 timeout, 53 write error, 54 read error, 55 rules or settings
unreadable, 81 internal error, 91 bad envelope.

  QMAILQUEUE=/var/qmail/bin/qmail-qfilter, with qmail-qfilter running
  block-forged-sender filter (see the README).
`

const queueHelp = `usage: block-forged-sender queue [flags]
       block-forged-sender-queue          (qmail execs QMAILQUEUE without arguments)

Runs as QMAILQUEUE in front of the real qmail-queue: the message arrives on fd 0 and is
streamed into qmail-queue while its header is scanned; the envelope arrives on fd 1 after
the message. A passed message gets its envelope and the exit code of qmail-queue; a
rejected one never gets an envelope, so qmail-queue queues nothing. Exit codes as for
filter. Settings come from the environment (BFS_RULES, BFS_QMAILQUEUE, ...).
`

// runFilter is the qmail-qfilter filter.
func runFilter(args []string, e cli.Env, std stdio) int {
	fs, c := qmailFlagSet("filter", filterHelp)
	return runQmail(fs, c, args, e, std, filterMessage, false)
}

// runQueue is the QMAILQUEUE program.
func runQueue(args []string, e cli.Env, std stdio) int {
	fs, c := qmailFlagSet("queue", queueHelp)
	fs.StringVar(&c.qmailQueue, "qmail-queue", defaultQmailQueue, "the real qmail-queue `PROGRAM` (QMAILQUEUE is never read for it: it names this program)")
	return runQmail(fs, c, args, e, std, queueMessage, true)
}

func qmailFlagSet(name, help string) (*cli.FlagSet, *config) {
	fs := cli.NewFlagSet("block-forged-sender "+name, help)
	c := &config{}
	policyFlags(fs, c)
	clientTrustFlags(fs, c)
	qmailFlags(fs, c)
	return fs, c
}

// handler processes one message and fills in the record; it returns the exit code for a
// decision, or an error for a fault.
type handler func(c *config, e cli.Env, std stdio, rec *cli.Record, child *atomic.Pointer[qmail.Queue]) (int, error)

// runQmail is what both qmail modes share: settings, signals, timeout, the one log line,
// and the mapping of faults to temporary exit codes. spawns says h runs qmail-queue.
func runQmail(fs *cli.FlagSet, c *config, args []string, e cli.Env, std stdio, h handler, spawns bool) (code int) {
	rec := &cli.Record{Verdict: "tempfail", HasExit: true, Pid: os.Getpid(), Client: e.Get("TCPREMOTEIP"), Host: e.Get("TCPREMOTEHOST"), QmailPPID: e.Get("QMAILPPID")}
	start := time.Now()
	// Which of fd 3 and fd 6 qmail opened must be known before this process opens any
	// file: the rules CDB would otherwise take a closed fd 3 and be read as the envelope.
	c.envelopeFD = qmail.EnvelopeFD3()
	c.errorPipe = qmail.CustomErrorPipe()
	if cli.HasHelp(args) {
		fs.PrintHelp(std.out)
		return 0
	}
	err := parse(fs, c, args, e)
	lg := cli.NewLogger(std.err, c.Syslog)
	rec.Mode = policy.Mode(c.Mode)
	logNow := func(r *cli.Record) {
		r.Duration = time.Since(start)
		r.Log(lg)
	}
	if err != nil {
		rec.Err = fmt.Errorf("%w: %v", errConfig, err)
		rec.Exit = exitCode(rec.Err)
		logNow(rec)
		return rec.Exit
	}
	if w := cli.UnknownWarning(fs, std.environ); w != "" {
		rec.Warning = w
	}

	// A write to a closed pipe must be an error to handle (EPIPE), not a silent death.
	// Ignoring SIGPIPE is cheapest (no signal goroutine), but the ignore would pass to
	// qmail-queue through exec: where it runs, SIGPIPE is caught instead.
	if spawns {
		signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	} else {
		signal.Ignore(syscall.SIGPIPE)
	}

	var child atomic.Pointer[qmail.Queue]
	var done atomic.Bool
	timer := time.AfterFunc(c.timeout, func() {
		if !done.CompareAndSwap(false, true) {
			return
		}
		if q := child.Load(); q != nil {
			q.Kill()
		}
		// rec belongs to the goroutine that is stuck: log a record of our own.
		tr := &cli.Record{Verdict: "tempfail", HasExit: true, Mode: rec.Mode, Pid: rec.Pid, Client: rec.Client, Host: rec.Host, QmailPPID: rec.QmailPPID}
		tr.Err = fmt.Errorf("%w after %v", errTimeout, c.timeout)
		tr.Exit = exitCode(tr.Err)
		logNow(tr)
		os.Exit(tr.Exit)
	})
	defer timer.Stop()
	defer func() {
		// A bug must not pass mail unchecked nor refuse it for good: 81.
		if p := recover(); p != nil {
			rec.Err = fmt.Errorf("internal error: %v", p)
			rec.Verdict = "tempfail"
			code = qmail.ExitInternalBug
			rec.Exit = code
			if done.CompareAndSwap(false, true) {
				logNow(rec)
			}
		}
	}()

	code, err = h(c, e, std, rec, &child)
	if err != nil {
		rec.Err = err
		code = exitCode(err)
		rec.Verdict = "tempfail"
	}
	rec.Exit = code
	if !done.CompareAndSwap(false, true) {
		// The timeout fired first and killed qmail-queue, which made h fail: the timer
		// logs and exits with ExitTimeout; returning would race it with another code.
		select {}
	}
	logNow(rec)
	return code
}

// filterMessage handles one message under qmail-qfilter.
func filterMessage(c *config, e cli.Env, std stdio, rec *cli.Record, _ *atomic.Pointer[qmail.Queue]) (int, error) {
	if err := closedStdio(std, true); err != nil {
		return 0, err
	}
	p := newPipeline(c, e, rec, false)
	defer p.close()
	if _, err := p.load(); err != nil {
		return 0, err
	}
	d, n, err := p.run(std.in, std.out, func() (qmail.Envelope, error) {
		if fd3 := c.envelopeFD; fd3 != nil {
			envl, err := qmail.ReadEnvelope(fd3, qmail.MaxEnvelope)
			if err != nil && !errors.Is(err, qmail.ErrBadEnvelope) {
				err = fmt.Errorf("%w: %v", qmail.ErrEnvelopeRead, err)
			}
			return envl, err
		}
		envl, ok := qmail.EnvelopeFromEnv(e)
		if !ok {
			return envl, fmt.Errorf("%w: fd 3 is closed and QMAILUSER is not set", qmail.ErrBadEnvelope)
		}
		return envl, nil
	})
	rec.Size, rec.HasSize = n, true
	if err != nil {
		return 0, err
	}
	return verdictCode(c, d, rec)
}

// queueMessage handles one message as QMAILQUEUE, in front of the real qmail-queue.
func queueMessage(c *config, e cli.Env, std stdio, rec *cli.Record, child *atomic.Pointer[qmail.Queue]) (int, error) {
	envFile, ok := std.out.(*os.File)
	if !ok {
		return 0, errors.New("queue mode needs the envelope descriptor on fd 1")
	}
	if err := closedStdio(std, false); err != nil {
		return 0, err
	}
	p := newPipeline(c, e, rec, false)
	defer p.close()
	if _, err := p.load(); err != nil {
		return 0, err
	}
	q, err := qmail.StartQueue(c.qmailQueue, std.errFile)
	if err != nil {
		return 0, err
	}
	child.Store(q)
	var code int
	var judgeErr error
	d, err := qmail.Deliver(q, std.in, envFile, p.scan(), func(envl qmail.Envelope) (bool, error) {
		code, judgeErr = verdictCode(c, p.decide(envl), rec)
		return code == qmail.ExitOK && judgeErr == nil, judgeErr
	})
	rec.Size, rec.HasSize = d.Size, true
	if d.HaveEnv {
		rec.Sender, rec.HaveSender = d.Envelope.Sender, true
	}
	switch {
	case err != nil:
		return 0, err
	case !d.Ran:
		return code, nil // refused: qmail-queue got no envelope
	case d.QueueExit != qmail.ExitOK:
		// qmail-queue's own verdict on the message: passed on, never turned into a pass.
		rec.Verdict = "tempfail"
		if !qmail.Temporary(d.QueueExit) {
			rec.Verdict = "reject"
		}
		rec.Err = fmt.Errorf("qmail-queue exited %d", d.QueueExit)
		return d.QueueExit, nil
	}
	return qmail.ExitOK, nil
}

// verdictCode maps a decision to the qmail exit code: 0 to pass, 31 or 82 to reject; a
// decision that could not be made is the fault's temporary code, and one that should
// have been final but was not, a bug.
func verdictCode(c *config, d policy.Decision, rec *cli.Record) (int, error) {
	switch d.Verdict {
	case policy.Pass:
		rec.Verdict = "pass"
		return qmail.ExitOK, nil
	case policy.Reject:
		rec.Verdict = "reject"
		return rejectCode(c, d), nil
	case policy.TempFail:
		return 0, d.Err
	}
	return 0, errPending
}

// closedStdio returns an error when qmail left fd 0 (the message) or, with output, fd 1
// (the filter's output) closed: the Go runtime put /dev/null there, which would read as an
// empty message or swallow the passed one.
func closedStdio(std stdio, output bool) error {
	if std.in == os.Stdin && qmail.ClosedAtStart(0) {
		return errInputClosed
	}
	if output && std.out == io.Writer(os.Stdout) && qmail.ClosedAtStart(1) {
		return errOutputClosed
	}
	return nil
}

// rejectCode refuses the message: with the rule's reason on fd 6 and exit 82 where qmail
// has the custom-error patch, else with exit 31 (qmail's own 554 text).
func rejectCode(c *config, d policy.Decision) int {
	if c.customError {
		if fd6 := c.errorPipe; fd6 != nil {
			_, err := fd6.Write(qmail.CustomErrorText(d.Reason()))
			fd6.Close()
			if err == nil {
				return qmail.ExitCustomError
			}
		}
	}
	return qmail.ExitRejected
}
