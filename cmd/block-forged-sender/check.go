package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/qmail"
	"block-forged-sender/internal/rules"
)

const checkHelp = `usage: block-forged-sender check [flags] [MESSAGE-FILE|-]

Explains the verdict the filter would give: for the envelope sender (--sender) and every
sender address in the message's header, it prints the address looked at, the rule that
matched it (file:line, the entry and its reason) or that none did, and the verdict. It reads
the same settings as the filter, from flags and environment (BFS_RULES, BFS_ALLOW,
RELAYCLIENT, ...), so its verdict is the filter's.

Exit 0: the message would pass. Exit 1: it would be rejected. Exit 2: usage. Exit 111:
the rules or the message could not be read.
`

// runCheck explains a verdict.
func runCheck(args []string, e env, std stdio) int {
	fs := newFlagSet("check", checkHelp, std.err)
	fs.policyFlags()
	fs.clientTrustFlags()
	c := fs.cfg
	fs.StringVar(&c.sender, "sender", "", "the envelope sender `ADDR` (empty or <> for the null sender)")
	fs.Func("rcpt", "a recipient `ADDR`, for rcpt= exceptions (repeatable)", func(s string) error {
		c.rcpts = append(c.rcpts, s)
		return nil
	})
	fs.StringVar(&c.clientIP, "client", "", "the client's `IP` address (default TCPREMOTEIP), for client= exceptions")
	if hasHelp(args) {
		fs.SetOutput(std.out)
		fs.Usage()
		return 0
	}
	if err := fs.parse(args, e); err != nil {
		fmt.Fprintf(std.err, "block-forged-sender check: %v\n", err)
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

	set, info, err := loadRules(c)
	if err != nil {
		return fail(err)
	}
	defer set.Close()
	fmt.Fprintf(std.out, "rules: %s\n", describeLoad(info))
	if w := loadWarning(info); w != "" {
		fmt.Fprintf(std.out, "warning: %s\n", w)
	}

	var cands []policy.Candidate
	if fs.NArg() == 1 {
		name := fs.Arg(0)
		var r io.Reader = std.in
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return fail(err)
			}
			defer f.Close()
			r = f
		}
		var tooMany bool
		if cands, _, tooMany, err = scanHeader(r, io.Discard, c); err != nil {
			return fail(err)
		}
		if tooMany {
			fmt.Fprintf(std.out, "warning: %v: only the first %d are checked, and the filter would not pass the message\n", errTooManyCandidates, len(cands))
		}
	}
	sender := strings.TrimSpace(c.sender)
	if sender == "<>" {
		sender = ""
	}
	envl := qmail.Envelope{Sender: sender, Recipients: c.rcpts}
	in, err := policyInput(c, e, envl, cands)
	if err != nil {
		return fail(err)
	}
	if !flagGiven(fs, "sender") {
		in.NullSender = true // no envelope given: judge the header alone
	}
	d, err := policy.Decide(in, set)
	if err != nil {
		return fail(err)
	}
	explain(std.out, d)
	if d.Verdict == policy.Reject && c.mode != modeMonitor {
		return 1
	}
	return 0
}

// flagGiven reports whether a flag was set on the command line or in the environment.
func flagGiven(fs *flagSet, name string) bool {
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
	if len(d.Checked) == 0 {
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
	if d.Verdict == policy.Reject {
		fmt.Fprintf(w, "verdict: reject (%s %s: %s)\n", d.Decider.Source, d.Decider.Address, d.Reason())
		return
	}
	fmt.Fprintln(w, "verdict: pass")
}

// describeRule prints a rule as file:line: entry (reason).
func describeRule(r *rules.Rule) string {
	s := fmt.Sprintf("%s:%d: %s", r.File, r.Line, r.Entry)
	if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	return s
}
