package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"block-forged-sender/internal/cli"
	"block-forged-sender/internal/header"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/qmail"
	"block-forged-sender/internal/rules"
)

// pipeline is one message's way through the policy, the same for filter, queue and check:
// trust first (a trusted client needs no rules), then the rules, the header scan while
// the message is copied, then the envelope and the verdict.
type pipeline struct {
	c     *config
	rec   *cli.Record
	judge *policy.Judge
	set   *rules.Set
}

// newPipeline starts judging a message from the client the environment describes.
func newPipeline(c *config, e cli.Env, rec *cli.Record, explain bool) *pipeline {
	p := &pipeline{c: c, rec: rec, judge: policy.NewJudge(c.policyConfig(explain), c.client(e))}
	rec.Trusted = p.judge.Trusted()
	return p
}

// load opens the rules with rules.Load (which compiles a text newer than its CDB), unless
// the client is trusted. Its failure is a *rulesError.
func (p *pipeline) load() (rules.LoadInfo, error) { return p.loadWith(rules.Load) }

// loadWith is load with another loader: check's rules.LoadReadOnly, which never writes.
func (p *pipeline) loadWith(load func(string) (*rules.Set, rules.LoadInfo, error)) (rules.LoadInfo, error) {
	if p.judge.Trusted() != "" {
		return rules.LoadInfo{}, nil
	}
	s, info, err := load(p.c.Rules)
	if err != nil {
		return info, &rulesError{err}
	}
	p.set = s
	p.judge.Use(s)
	if w := cli.LoadWarning(info); w != "" {
		p.rec.Warning = strings.TrimPrefix(p.rec.Warning+"; "+w, "; ")
	}
	p.rec.Rules = info.Version
	return info, nil
}

// share makes p judge with the rules that from loaded (and closes): check replays every
// message with one load.
func (p *pipeline) share(from *pipeline) {
	if from.set != nil && p.judge.Trusted() == "" {
		p.judge.Use(from.set)
	}
}

func (p *pipeline) close() {
	if p.set != nil {
		p.set.Close()
	}
}

// scan returns the header scan for qmail.CopyMessage: nil for a trusted client, whose
// message is copied as it is.
func (p *pipeline) scan() qmail.ScanFunc {
	if p.judge.Trusted() != "" {
		return nil
	}
	opt := p.c.HeaderOptions()
	opt.MaxField = fieldLimit(opt.MaxField) // --max-field, cut to fit a memory limit
	opt.Info = func(name string, value []byte) {
		switch {
		case name == "Message-ID" && p.rec.MsgID == "":
			p.rec.MsgID = string(value)
		case name == "Content-Type":
			p.judge.ContentType(value)
		}
	}
	return func(r io.Reader, w io.Writer) (int64, error) {
		n, err := header.Scan(r, w, opt, p.judge.Field)
		if errors.Is(err, header.ErrFieldTooLong) {
			err = fmt.Errorf("%w: over %d bytes%s", err, opt.MaxField, fieldLimitNote(p.c.MaxField))
		}
		p.judge.HeaderDone(err)
		return n, err
	}
}

// run is the filter's work on one message, apart from descriptors: the message goes from
// in to out through the header scan, then envelope gives the envelope, and the verdict is
// made. It is what filter and check do, and what FuzzVerdict fuzzes.
func (p *pipeline) run(in io.Reader, out io.Writer, envelope func() (qmail.Envelope, error)) (policy.Decision, int64, error) {
	n, err := qmail.CopyMessage(out, in, p.scan())
	if err != nil {
		return policy.Decision{}, n, err
	}
	env, err := envelope()
	if err != nil {
		return policy.Decision{}, n, err
	}
	return p.decide(env), n, nil
}

// decide gives the judge the envelope and returns the verdict.
func (p *pipeline) decide(env qmail.Envelope) policy.Decision {
	p.rec.Sender, p.rec.HaveSender = env.Sender, true
	p.rec.Rcpts = env.Recipients
	p.judge.Sender(env.Sender)
	p.judge.Recipients(env.Recipients)
	d := p.judge.Decide()
	p.rec.Decision = &d
	return d
}

// errPending is the fault of a verdict that should have been final (a bug).
var errPending = errors.New("internal error: the verdict was asked before the message was complete")

// rulesError marks a failure to read or compile the rules: qmail-queue's exit code 55.
type rulesError struct{ err error }

func (e *rulesError) Error() string { return e.err.Error() }
func (e *rulesError) Unwrap() error { return e.err }
