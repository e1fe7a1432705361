package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"block-forged-sender/internal/cli"
	"block-forged-sender/internal/mailbox"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/qmail"
)

// replayer runs stored messages through the filter's pipeline, one Judge each, with the
// rules loaded once.
type replayer struct {
	c           *config
	e           cli.Env
	rules       *pipeline // the pipeline that loaded the rules
	senderGiven bool      // --sender: the envelope sender of every message
	sender      string    // its value, "" for <>
	stdin       io.Reader
	rec         cli.Record
	dl          mailbox.Delivery
}

// delivered says which parts of the envelope came from the message's header.
type delivered struct {
	sender bool   // the sender, from Return-Path
	rcpt   string // the recipient's field: Delivered-To, X-Original-To; "" when not from the header
}

// open opens one argument: - is standard input, one message.
func (r *replayer) open(name string) (*mailbox.Source, error) {
	if name == "-" {
		return mailbox.FromReader("-", r.stdin), nil
	}
	return mailbox.Open(name)
}

// envelope returns the envelope of a stored message read through dl, for pipeline.run:
// --sender and --rcpt when given, else what the delivery agent recorded (Return-Path; a
// Delivered-To or X-Original-To); from, when not nil, says which.
func (r *replayer) envelope(dl *mailbox.Delivery, from *delivered) func() (qmail.Envelope, error) {
	return func() (qmail.Envelope, error) {
		env := qmail.Envelope{Sender: r.sender, Recipients: r.c.rcpts}
		if !r.senderGiven {
			s, found, err := dl.Sender()
			if err != nil {
				return env, err
			}
			env.Sender = s
			if from != nil {
				from.sender = found
			}
		}
		if len(r.c.rcpts) == 0 {
			if rcpt, field, ok := dl.Recipient(); ok {
				env.Recipients = []string{rcpt}
				if from != nil {
					from.rcpt = field
				}
			}
		}
		return env, nil
	}
}

// tally counts the verdicts of a replay.
type tally struct{ pass, reject, tempfail int }

// replay judges every message of every argument (first is args[0] already open, or nil),
// writes one line for each and the summary, and returns the exit code: 111 when any
// message had no verdict, else 1 when any was rejected, else 0.
func (r *replayer) replay(w io.Writer, args []string, first *mailbox.Source) int {
	var t tally
	for i, name := range args {
		src := first
		if i > 0 || src == nil {
			var err error
			if src, err = r.open(name); err != nil {
				t.add(w, name, policy.Decision{}, err)
				continue
			}
		}
		for {
			m, err := src.Next()
			if err == io.EOF {
				break
			}
			var d policy.Decision
			if err == nil {
				d, err = r.judge(m.Reader)
			}
			t.add(w, m.Name, d, err)
		}
		src.Close()
	}
	// Exactly this form, "messages" even for one: scripts read it (issue 13).
	fmt.Fprintf(w, "checked %d messages: %d pass, %d reject, %d tempfail\n",
		t.pass+t.reject+t.tempfail, t.pass, t.reject, t.tempfail)
	switch {
	case t.tempfail > 0:
		return 111
	case t.reject > 0:
		return 1
	}
	return 0
}

// judge runs one message through a pipeline of its own: the filter's, with the envelope
// from the message or the flags. A bug is this message's temporary failure, as the
// filter's exit 81, and the replay goes on.
func (r *replayer) judge(in io.Reader) (d policy.Decision, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error: %v", p)
		}
	}()
	r.rec = cli.Record{}
	p := newPipeline(r.c, r.e, &r.rec, false)
	p.share(r.rules)
	r.dl.Reset(in)
	d, _, err = p.run(&r.dl, io.Discard, r.envelope(&r.dl, nil))
	return d, err
}

// add counts one message and writes its line.
func (t *tally) add(w io.Writer, name string, d policy.Decision, err error) {
	name = quoteIfNeeded(name)
	if err == nil {
		switch d.Verdict {
		case policy.TempFail:
			err = d.Err
		case policy.Pass, policy.Reject:
		default:
			err = errPending
		}
	}
	switch {
	case err != nil:
		t.tempfail++
		fmt.Fprintf(w, "%s tempfail (%s)\n", name, strings.ReplaceAll(err.Error(), "\n", " "))
	case d.Verdict == policy.Reject:
		t.reject++
		fmt.Fprintf(w, "%s reject %s\n", name, decider(d))
	default:
		t.pass++
		fmt.Fprintf(w, "%s pass%s\n", name, passNote(d))
	}
}

// decider names the address that rejects (or would reject) the message, and its rule:
// "From ceo@ours.example by FILE:LINE (reason)".
func decider(d policy.Decision) string {
	s := d.Decider.Source + " " + quoteIfNeeded(d.Decider.Address)
	if rule := d.Rule(); rule != nil {
		s += " by " + rule.File + ":" + strconv.Itoa(rule.Line)
	}
	return s + " (" + d.Reason() + ")"
}

// passNote says what let a message pass that a rule matched: the trust, monitor mode, an
// exception or an allowed pattern; "" when no rule matched.
func passNote(d policy.Decision) string {
	switch {
	case d.Trusted != "":
		return " (client trusted: " + d.Trusted + ")"
	case d.WouldReject:
		return " (monitor mode; would reject: " + decider(d) + ")"
	case d.Excepted != nil && d.Excepted.Match.Block != nil:
		x := d.Excepted
		b := x.Match.Block
		s := " (" + x.Source + " " + quoteIfNeeded(x.Address) + " matches " + b.File + ":" + strconv.Itoa(b.Line)
		if x.Allowed {
			return s + ", allowed by BFS_ALLOW)"
		}
		if e := x.Match.Except; e != nil {
			return s + ", excepted by " + e.File + ":" + strconv.Itoa(e.Line) + ")"
		}
		return s + ")"
	}
	return ""
}

// quoteIfNeeded returns s as it is when it is printable text without blanks, else quoted
// (Go syntax): file names and addresses from messages must not break a line apart or put
// control characters on the admin's terminal.
func quoteIfNeeded(s string) string {
	if s == "" || s[0] == '"' || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
