package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"block-forged-sender/internal/cli"
	"block-forged-sender/internal/mailbox"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/qmail"
	"block-forged-sender/internal/rules"
)

const checkHelp = `usage: block-forged-sender check [flags] [MESSAGE-FILE|MAILDIR|MBOX|-]...

Explains the verdict the filter would give on a message, or replays stored mail through
the filter: what would this list have blocked?

With one message file (- for standard input), or with --sender and no file, it prints
each address looked at (the envelope sender, every sender address in the header), the
rule that matched it (file:line, the entry and its reason) or that none did, and the
verdict.

With several files, or with a Maildir (a directory with cur/ and new/: every message
file in both, cur/ first, by name) or an mbox (a file that starts with "From ", or an
empty file: every message, mboxrd quoting undone), it prints one line per message: its
file (an mbox's messages are FILE#1, FILE#2, ...), the verdict, for a reject the address
and the rule (file:line) that decided it, for a tempfail why; then the summary
  checked N messages: P pass, R reject, T tempfail

Each message's envelope sender is --sender when given, else its first Return-Path field
(the last delivery's; <> is the null sender; without one the header is judged alone; one
that holds no address is a tempfail). Its recipient is --rcpt when given, else its first
Delivered-To or X-Original-To field; with no recipient, no rcpt= exception holds. The
client is --client when given, else TCPREMOTEIP and TCPREMOTEHOST. Each message runs
through the filter's own pipeline with the same settings, from flags and environment
(BFS_RULES, BFS_ALLOW, RELAYCLIENT, ...), so its verdict is the filter's. check never
writes to the rules directory: a text newer than its CDB is read, not compiled.

Exit 0: every message would pass. Exit 1: one or more would be rejected. Exit 2: usage.
Exit 111: one or more had no verdict (a file that cannot be read, a Return-Path without
an address, a temporary failure of the filter), or the rules could not be read.
`

// runCheck explains a verdict, or replays stored mail.
func runCheck(args []string, e cli.Env, std stdio) int {
	fs := cli.NewFlagSet("block-forged-sender check", checkHelp)
	c := &config{}
	policyFlags(fs, c)
	clientTrustFlags(fs, c)
	fs.StringVar(&c.sender, "sender", "", "the envelope sender `ADDR` of every message (empty or <> for the null sender), instead of its Return-Path")
	fs.Func("rcpt", "a recipient `ADDR` of every message, for rcpt= exceptions, instead of its Delivered-To (repeatable)", func(s string) error {
		c.rcpts = append(c.rcpts, s)
		return nil
	})
	fs.Func("client", "the `CLIENT`, for client= exceptions: its IP address or its host name; give both with two --client (default TCPREMOTEIP and TCPREMOTEHOST)", c.addClient)
	if cli.HasHelp(args) {
		fs.PrintHelp(std.out)
		return 0
	}
	if err := parse(fs, c, args, e); err != nil {
		fmt.Fprintf(std.err, "%v\n", err)
		return 2
	}
	if fs.NArg() == 0 && !flagGiven(fs, "sender") {
		fmt.Fprint(std.err, "block-forged-sender check: give --sender ADDR, or message files, Maildirs or mbox files\n")
		return 2
	}
	if i := slices.Index(fs.Args(), "-"); i >= 0 && slices.Contains(fs.Args()[i+1:], "-") {
		fmt.Fprint(std.err, "block-forged-sender check: - (standard input) given twice\n")
		return 2
	}
	w := bufio.NewWriter(std.out)
	code := check(w, fs, c, e, std)
	if err := w.Flush(); err != nil {
		fmt.Fprintf(std.err, "block-forged-sender check: writing the output: %v\n", err)
		return 111
	}
	return code
}

// check is runCheck after the command line: the rules, then the explanation or the replay.
func check(w io.Writer, fs *cli.FlagSet, c *config, e cli.Env, std stdio) int {
	fail := func(err error) int {
		// A rules text with mistakes: every one of them, with its file:line, as compile.
		if list := (*rules.ErrorList)(nil); errors.As(err, &list) {
			for _, e := range list.Errors {
				fmt.Fprintf(std.err, "block-forged-sender check: %v\n", e)
			}
			if list.More > 0 {
				fmt.Fprintf(std.err, "block-forged-sender check: ... and %d more\n", list.More)
			}
			return 111
		}
		fmt.Fprintf(std.err, "block-forged-sender check: %v\n", err)
		return 111
	}
	if warn := cli.UnknownWarning(fs, std.environ); warn != "" {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}

	rec := &cli.Record{}
	p := newPipeline(c, e, rec, true)
	defer p.close()
	info, err := p.loadWith(rules.LoadReadOnly)
	if err != nil {
		return fail(err)
	}
	if p.judge.Trusted() != "" {
		fmt.Fprintln(w, "rules: not read (the client is trusted)")
	} else {
		fmt.Fprintf(w, "rules: %s\n", describeRules(info))
	}

	r := &replayer{c: c, e: e, rules: p, senderGiven: flagGiven(fs, "sender"), stdin: std.in}
	if sender := strings.TrimSpace(c.sender); sender != "<>" {
		r.sender = sender
	}
	var d policy.Decision
	switch args := fs.Args(); {
	case len(args) == 0:
		p.judge.HeaderDone(nil) // the envelope alone
		d = p.decide(qmail.Envelope{Sender: r.sender, Recipients: c.rcpts})
	case len(args) == 1:
		src, err := r.open(args[0])
		if err != nil {
			return fail(err)
		}
		defer src.Close()
		if src.Kind != mailbox.KindFile {
			return r.replay(w, args, src)
		}
		m, err := src.Next()
		if err != nil {
			return fail(err)
		}
		dl := mailbox.NewDelivery(m.Reader)
		var from delivered
		if d, _, err = p.run(dl, io.Discard, r.envelope(dl, &from)); err != nil {
			return fail(err)
		}
		if from.sender {
			fmt.Fprintf(w, "sender: %s (Return-Path)\n", quoteIfNeeded("<"+p.rec.Sender+">"))
		}
		if from.rcpt != "" {
			fmt.Fprintf(w, "recipient: %s (%s)\n", quoteIfNeeded(p.rec.Rcpts[0]), from.rcpt)
		}
	default:
		return r.replay(w, args, nil)
	}
	explain(w, d)
	switch d.Verdict {
	case policy.Pass:
		return 0
	case policy.Reject:
		return 1
	case policy.TempFail:
		return fail(d.Err)
	}
	return fail(errPending)
}

// describeRules says where check got the rules. The text read directly is check's choice
// (it never compiles), not the filter's fallback that the log warns of.
func describeRules(info rules.LoadInfo) string {
	v := ""
	if info.Version != "" {
		v = ", version " + info.Version
	}
	if !info.InMemory {
		return cli.DescribeLoad(info) + v
	}
	why := "there is no " + info.Source + ".cdb"
	if info.Stale {
		why = "it is newer than " + info.Source + ".cdb"
	}
	return fmt.Sprintf("%s (the text, read directly: %s; check does not compile it, run: %s)%s", info.Source, why, info.Command, v)
}

// flagGiven reports whether a flag was set on the command line or in the environment.
func flagGiven(fs *cli.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// explain prints every address looked at and what decided the verdict.
func explain(w io.Writer, d policy.Decision) {
	if d.Trusted != "" {
		fmt.Fprintf(w, "client trusted (%s): nothing checked\nverdict: pass\n", d.Trusted)
		return
	}
	if len(d.Checked) == 0 && d.Verdict != policy.TempFail {
		fmt.Fprintln(w, "no sender address to check")
	}
	for _, c := range d.Checked {
		fmt.Fprintf(w, "%-11s %s", c.Source, strconv.Quote(c.Address))
		if c.Canonical != c.Address {
			fmt.Fprintf(w, " (looked up as %s)", strconv.Quote(c.Canonical))
		}
		fmt.Fprintln(w)
		switch {
		case c.Allowed:
			fmt.Fprintln(w, "            allowed for this client (BFS_ALLOW)")
		case c.Match.Block == nil && c.Match.Except == nil:
			fmt.Fprintln(w, "            no rule matches")
		}
		if b := c.Match.Block; b != nil {
			fmt.Fprintf(w, "            matches %s\n", describeRule(b))
		}
		if x := c.Match.Except; x != nil {
			fmt.Fprintf(w, "            excepted by %s\n", describeRule(x))
		}
	}
	switch {
	case d.Verdict == policy.Reject:
		fmt.Fprintf(w, "verdict: reject (%s %s: %s)\n", d.Decider.Source, d.Decider.Address, d.Reason())
	case d.Verdict == policy.TempFail:
		fmt.Fprintf(w, "verdict: tempfail (%v)\n", d.Err)
	case d.WouldReject:
		fmt.Fprintf(w, "verdict: pass (monitor mode; would reject: %s %s: %s)\n", d.Decider.Source, d.Decider.Address, d.Reason())
	case d.Verdict == policy.Pass:
		fmt.Fprintln(w, "verdict: pass")
	}
}

// describeRule prints a rule as file:line: entry (reason).
func describeRule(r *rules.Rule) string {
	s := fmt.Sprintf("%s:%d: %s", r.File, r.Line, r.Entry)
	if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	return s
}
