package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/qmail"
)

const filterHelp = `usage: block-forged-sender filter [flags]

A filter for qmail-qfilter: reads the message on fd 0 and writes it, byte for byte, to
fd 1. The envelope is read from fd 3 when it is open (qmail-queue form), else from
QMAILUSER, QMAILHOST and QMAILRCPTS. Exit 0: pass. Exit 31: rejected (554). Exit 82
after writing the reason to fd 6: rejected with the reason shown to the client (qmail with
the custom-error patch). Any other exit is a temporary failure (451): 52 timeout, 53 write
error, 54 read error, 55 rules or settings unreadable, 81 internal error, 91 bad envelope.

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
func runFilter(args []string, e env, std stdio) int {
	fs := newFlagSet("filter", filterHelp, std.err)
	fs.policyFlags()
	fs.clientTrustFlags()
	fs.qmailFlags()
	return runQmail(fs, args, e, std, filterMessage, false)
}

// runQueue is the QMAILQUEUE program.
func runQueue(args []string, e env, std stdio) int {
	fs := newFlagSet("queue", queueHelp, std.err)
	fs.policyFlags()
	fs.clientTrustFlags()
	fs.qmailFlags()
	fs.StringVar(&fs.cfg.qmailQueue, "qmail-queue", defaultQmailQueue, "the real qmail-queue `program` (QMAILQUEUE is never read for it: it names this program)")
	return runQmail(fs, args, e, std, queueMessage, true)
}

// handler processes one message and fills in the record; it returns the exit code for a
// decision, or an error for a fault.
type handler func(c *config, e env, std stdio, rec *record, child *atomic.Pointer[qmail.Queue]) (int, error)

// runQmail is what both qmail modes share: settings, signals, timeout, the one log line,
// and the mapping of faults to temporary exit codes. spawns says h runs qmail-queue.
func runQmail(fs *flagSet, args []string, e env, std stdio, h handler, spawns bool) (code int) {
	rec := &record{start: time.Now(), verdict: "tempfail"}
	// Which of fd 3 and fd 6 qmail opened must be known before this process opens any
	// file: the rules CDB would otherwise take a closed fd 3 and be read as the envelope.
	fs.cfg.envelopeFD = qmail.EnvelopeFD3()
	fs.cfg.errorPipe = qmail.CustomErrorPipe()
	if hasHelp(args) {
		fs.SetOutput(std.out)
		fs.Usage()
		return 0
	}
	fs.SetOutput(io.Discard)
	err := fs.parse(args, e)
	c := fs.cfg
	lg := newLogger(c, std.err)
	rec.mode = c.mode
	if err != nil {
		rec.err = fmt.Errorf("%w: %v", errConfig, err)
		rec.exit = exitCode(rec.err)
		rec.log(lg, e)
		return rec.exit
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
		tr := &record{start: rec.start, mode: c.mode, verdict: "tempfail"}
		tr.err = fmt.Errorf("%w after %v", errTimeout, c.timeout)
		tr.exit = exitCode(tr.err)
		tr.log(lg, e)
		os.Exit(tr.exit)
	})
	defer timer.Stop()
	defer func() {
		// A bug must not pass mail unchecked nor refuse it for good: 81.
		if p := recover(); p != nil {
			rec.err = fmt.Errorf("internal error: %v", p)
			code = qmail.ExitInternalBug
			rec.exit = code
			if done.CompareAndSwap(false, true) {
				rec.log(lg, e)
			}
		}
	}()

	code, err = h(c, e, std, rec, &child)
	if err != nil {
		rec.err = err
		code = exitCode(err)
		rec.verdict = "tempfail"
	}
	rec.exit = code
	if !done.CompareAndSwap(false, true) {
		// The timeout fired first and killed qmail-queue, which made h fail: the timer
		// logs and exits with ExitTimeout; returning would race it with another code.
		select {}
	}
	rec.log(lg, e)
	return code
}

// filterMessage handles one message under qmail-qfilter.
func filterMessage(c *config, e env, std stdio, rec *record, _ *atomic.Pointer[qmail.Queue]) (int, error) {
	if err := closedStdio(std, true); err != nil {
		return 0, err
	}
	if t := trust(c, e); t != "" {
		rec.trusted, rec.verdict = t, "pass"
		n, err := copyBody(std.out, std.in)
		rec.size = n
		if err != nil {
			return 0, &copyError{err}
		}
		return qmail.ExitOK, nil
	}
	set, info, err := loadRules(c)
	if err != nil {
		return 0, err
	}
	defer set.Close()
	rec.warning = loadWarning(info)

	cands, n, tooMany, err := scanHeader(std.in, std.out, c)
	rec.size = n
	if err != nil {
		return 0, err
	}
	m, err := copyBody(std.out, std.in)
	rec.size += m
	if err != nil {
		return 0, &copyError{err}
	}

	var envl qmail.Envelope
	if fd3 := c.envelopeFD; fd3 != nil {
		envl, err = qmail.ReadEnvelope(fd3, qmail.MaxEnvelope)
		if err != nil && !errors.Is(err, qmail.ErrBadEnvelope) {
			return 0, fmt.Errorf("%w: %v", errEnvelopeRead, err)
		}
	} else {
		var ok bool
		envl, ok = qmail.EnvelopeFromEnv(e)
		if !ok {
			err = fmt.Errorf("%w: fd 3 is closed and QMAILUSER is not set", qmail.ErrBadEnvelope)
		}
	}
	if err != nil {
		return 0, err
	}
	return decide(c, e, envl, cands, tooMany, rec, set)
}

// queueMessage handles one message as QMAILQUEUE, in front of the real qmail-queue.
func queueMessage(c *config, e env, std stdio, rec *record, child *atomic.Pointer[qmail.Queue]) (int, error) {
	envFile, ok := std.out.(*os.File)
	if !ok {
		return 0, errors.New("queue mode needs the envelope descriptor on fd 1")
	}
	if err := closedStdio(std, false); err != nil {
		return 0, err
	}
	if t := trust(c, e); t != "" {
		rec.trusted, rec.verdict = t, "pass"
		q, err := qmail.StartQueue(c.qmailQueue, std.errFile)
		if err != nil {
			return 0, err
		}
		child.Store(q)
		return queueStream(q, std.in, envFile, rec, nil, nil)
	}
	set, info, err := loadRules(c)
	if err != nil {
		return 0, err
	}
	defer set.Close()
	rec.warning = loadWarning(info)

	q, err := qmail.StartQueue(c.qmailQueue, std.errFile)
	if err != nil {
		return 0, err
	}
	child.Store(q)
	return queueStream(q, std.in, envFile, rec, c, func(envl qmail.Envelope, cands []policy.Candidate, tooMany bool) (int, error) {
		return decide(c, e, envl, cands, tooMany, rec, set)
	})
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

// queueStream streams the message from in into qmail-queue, scanning its header when c is
// not nil, then reads the envelope from envFile, asks judge, and either gives qmail-queue
// the envelope or aborts it. Nothing but the header field being scanned is held in memory.
func queueStream(q *qmail.Queue, in, envFile *os.File, rec *record, c *config,
	judge func(qmail.Envelope, []policy.Candidate, bool) (int, error)) (int, error) {
	var cands []policy.Candidate
	var tooMany bool
	var err error
	if c != nil {
		cands, rec.size, tooMany, err = scanHeader(in, q.Message, c)
	}
	if err == nil {
		var m int64
		m, err = qmail.Copy(q.Message, in)
		rec.size += m
		if err != nil {
			err = &copyError{err}
		}
	}
	if err != nil {
		if exitCode(err) == qmail.ExitWriteError {
			// qmail-queue stopped reading: its own exit code says why.
			if code, werr := q.Wait(); werr == nil && code != qmail.ExitOK {
				return qmailQueueExit(code, rec)
			}
			return 0, err
		}
		q.Abort()
		return 0, err
	}
	envl, err := qmail.ReadEnvelope(envFile, qmail.MaxEnvelope)
	if err != nil {
		q.Abort()
		if !errors.Is(err, qmail.ErrBadEnvelope) {
			err = fmt.Errorf("%w: %v", errEnvelopeRead, err)
		}
		return 0, err
	}
	rec.haveEnv, rec.sender = true, envl.Sender
	if judge != nil {
		code, err := judge(envl, cands, tooMany)
		if err != nil || code != qmail.ExitOK {
			q.Abort()
			return code, err
		}
	}
	code, err := q.Commit(envl.Raw)
	if err != nil {
		return 0, err
	}
	return qmailQueueExit(code, rec)
}

// qmailQueueExit passes on the exit code of the real qmail-queue: its own verdict on the
// message. It never turns into a pass unless qmail-queue queued the message.
func qmailQueueExit(code int, rec *record) (int, error) {
	if code != qmail.ExitOK {
		rec.verdict = "tempfail"
		if !qmail.Temporary(code) {
			rec.verdict = "reject"
		}
		rec.err = fmt.Errorf("qmail-queue exited %d", code)
	}
	return code, nil
}

// decide judges a message whose envelope and header candidates are known, and returns its
// exit code: 0 to pass, 31 or 82 to reject. tooMany says candidates were left out: then
// the message may be rejected on those seen, but never passed.
func decide(c *config, e env, envl qmail.Envelope, cands []policy.Candidate, tooMany bool, rec *record, set policy.Lookuper) (int, error) {
	rec.haveEnv, rec.sender = true, envl.Sender
	for _, c := range cands {
		if a := c.Addr.String(); !slices.Contains(rec.from, a) {
			rec.from = append(rec.from, a)
		}
	}
	in, err := policyInput(c, e, envl, cands)
	if err != nil {
		return 0, err
	}
	d, err := policy.Decide(in, set)
	if err != nil {
		return 0, err
	}
	rec.decision = &d
	if tooMany && d.Verdict == policy.Pass {
		return 0, errTooManyCandidates
	}
	if d.Verdict == policy.Pass || c.mode == modeMonitor {
		rec.verdict = "pass"
		return qmail.ExitOK, nil
	}
	rec.verdict = "reject"
	return rejectCode(c, d), nil
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

// copyBody copies the rest of the message without passing it through user space where
// the kernel allows: copy_file_range between files, splice between pipes.
func copyBody(w io.Writer, r *os.File) (int64, error) {
	if f, ok := w.(*os.File); ok {
		return qmail.Copy(f, r)
	}
	return io.Copy(w, r)
}
