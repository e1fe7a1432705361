package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"block-forged-sender/internal/cli"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/qmail"
	"block-forged-sender/internal/rules"
)

const checkHelp = `usage: block-forged-sender check [flags] [MESSAGE-FILE|-]

Explains the verdict the filter would give: for the envelope sender (--sender) and every
sender address in the message's header, it prints the address looked at, the rule that
matched it (file:line, the entry and its reason) or that none did, and the verdict. It
runs the filter's own pipeline with the same settings, from flags and environment
(BFS_RULES, BFS_ALLOW, RELAYCLIENT, ...), so its verdict is the filter's.

Exit 0: the message would pass. Exit 1: it would be rejected. Exit 2: usage. Exit 111:
no verdict (the rules or the message could not be read, or the filter would fail
temporarily).
`

// runCheck explains a verdict.
func runCheck(args []string, e cli.Env, std stdio) int {
	fs := cli.NewFlagSet("block-forged-sender check", checkHelp)
	c := &config{}
	policyFlags(fs, c)
	clientTrustFlags(fs, c)
	fs.StringVar(&c.sender, "sender", "", "the envelope sender `ADDR` (empty or <> for the null sender)")
	fs.Func("rcpt", "a recipient `ADDR`, for rcpt= exceptions (repeatable)", func(s string) error {
		c.rcpts = append(c.rcpts, s)
		return nil
	})
	fs.StringVar(&c.clientIP, "client", "", "the client's `IP` address (default TCPREMOTEIP), for client= exceptions")
	if cli.HasHelp(args) {
		fs.PrintHelp(std.out)
		return 0
	}
	if err := parse(fs, c, args, e); err != nil {
		fmt.Fprintf(std.err, "%v\n", err)
		return 2
	}
	if fs.NArg() > 1 || (fs.NArg() == 0 && !flagGiven(fs, "sender")) {
		fmt.Fprint(std.err, "block-forged-sender check: give --sender ADDR and/or one MESSAGE-FILE\n")
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(std.err, "block-forged-sender check: %v\n", err)
		return 111
	}
	if w := cli.UnknownWarning(fs, std.environ); w != "" {
		fmt.Fprintf(std.out, "warning: %s\n", w)
	}

	rec := &cli.Record{}
	p := newPipeline(c, e, rec, true)
	defer p.close()
	info, err := p.load()
	if err != nil {
		return fail(err)
	}
	if p.judge.Trusted() != "" {
		fmt.Fprintln(std.out, "rules: not read (the client is trusted)")
	} else {
		fmt.Fprintf(std.out, "rules: %s\n", cli.DescribeLoad(info))
		if rec.Warning != "" {
			fmt.Fprintf(std.out, "warning: %s\n", rec.Warning)
		}
	}

	sender := strings.TrimSpace(c.sender)
	if sender == "<>" || !flagGiven(fs, "sender") {
		sender = "" // no envelope given: judge the header alone
	}
	envelope := func() (qmail.Envelope, error) { return qmail.Envelope{Sender: sender, Recipients: c.rcpts}, nil }
	var d policy.Decision
	if fs.NArg() == 1 {
		var r io.Reader = std.in
		if name := fs.Arg(0); name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return fail(err)
			}
			defer f.Close()
			r = f
		}
		if d, _, err = p.run(r, io.Discard, envelope); err != nil {
			return fail(err)
		}
	} else {
		p.judge.HeaderDone(nil) // the envelope alone
		env, _ := envelope()
		d = p.decide(env)
	}
	explain(std.out, d)
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
