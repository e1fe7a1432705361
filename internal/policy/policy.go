// Package policy decides whether a message passes: it looks the envelope sender and every
// header sender candidate up in the rules, with the client's trust and exceptions. It does
// no I/O and no logging, so the qmail modes, the milter and check share one verdict.
package policy

import (
	"errors"
	"fmt"

	"block-forged-sender/internal/address"
	"block-forged-sender/internal/rules"
)

// Verdict is the outcome for one message.
type Verdict string

const (
	Pass   Verdict = "pass"
	Reject Verdict = "reject"
)

// Sources of a candidate address.
const (
	SourceEnvelope = "envelope"
)

// Candidate is one address a reader could take for the sender, and where it was found.
type Candidate struct {
	Source string // SourceEnvelope, or the header field name: "From", "Sender", "Resent-From"
	Addr   address.Address
}

// Input is everything the policy needs to know about one message.
type Input struct {
	Sender     address.Address // the envelope sender, unless NullSender
	NullSender bool            // <>: bounces are never blocked by their envelope alone
	Headers    []Candidate     // the header sender candidates, in order
	Recipients []string        // canonical recipient addresses (for rcpt= exceptions)
	Client     rules.Scope     // ClientIP and ClientHost (Recipients is filled from above)
	Trusted    string          // why the client is trusted ("relayclient", ...); "" when not
	Allow      []string        // canonical patterns this client may use (BFS_ALLOW)

	// DefaultHost returns the host that qualifies an unqualified address, as qmail does
	// with control/envnoathost. It is called only when such an address is seen.
	DefaultHost func() (string, error)
}

// Checked is one address looked at, and what the rules said of it.
type Checked struct {
	Source    string
	Address   string // as found: local@domain, case kept
	Canonical string // the form looked up
	Allowed   bool   // covered by Input.Allow
	Match     rules.Match
}

// Decision is the verdict on one message, with what decided it.
type Decision struct {
	Verdict Verdict
	Trusted string    // the trust that let the message pass unchecked, if any
	Decider *Checked  // on reject: the first address that the rules block
	Checked []Checked // every address looked at, in order
}

// Rule returns the block rule that rejected the message, or nil.
func (d Decision) Rule() *rules.Rule {
	if d.Decider == nil {
		return nil
	}
	return d.Decider.Match.Block
}

// Reason returns the reason of the rejecting rule, or a generic one when the rule gave none.
func (d Decision) Reason() string {
	if r := d.Rule(); r != nil && r.Reason != "" {
		return r.Reason
	}
	if d.Verdict == Reject {
		return "sender address rejected"
	}
	return ""
}

// Lookuper is the rules list: [rules.Set] in production.
type Lookuper interface {
	Lookup(addr string, sc rules.Scope) (rules.Match, error)
}

// ErrNoDefaultHost is returned when an unqualified address must be qualified and no
// default host is known: a configuration fault, so a temporary failure.
var ErrNoDefaultHost = errors.New("policy: unqualified address and no default host")

// Decide looks up the envelope sender and each header candidate, and rejects the message
// when any of them is blocked by a rule that no exception covers. A trusted client passes
// unchecked. An error means no decision could be made: callers fail temporarily.
func Decide(in Input, l Lookuper) (Decision, error) {
	if in.Trusted != "" {
		return Decision{Verdict: Pass, Trusted: in.Trusted}, nil
	}
	scope := in.Client
	scope.Recipients = in.Recipients
	d := Decision{Verdict: Pass}
	decider := -1
	seen := make(map[string]bool, len(in.Headers)+1)
	check := func(source string, a address.Address) error {
		if a.Domain == "" {
			// An unqualified address is qualified as qmail would deliver a reply to it, so
			// MAIL FROM:<ceo> cannot make a remote client look local without meeting the
			// rules for the local domain.
			if in.DefaultHost == nil {
				return ErrNoDefaultHost
			}
			host, err := in.DefaultHost()
			if err != nil {
				return fmt.Errorf("%w: %v", ErrNoDefaultHost, err)
			}
			if host == "" {
				return ErrNoDefaultHost
			}
			a.Domain = host
		}
		c := Checked{Source: source, Address: a.String(), Canonical: a.Canonical()}
		if seen[c.Canonical] {
			return nil // looked up already; the first source is the one reported
		}
		seen[c.Canonical] = true
		if allowed(in.Allow, c.Canonical) {
			c.Allowed = true
		} else {
			m, err := l.Lookup(c.Canonical, scope)
			if err != nil {
				return err
			}
			c.Match = m
		}
		d.Checked = append(d.Checked, c)
		if !c.Allowed && c.Match.Blocked() && decider < 0 {
			decider = len(d.Checked) - 1
		}
		return nil
	}
	if !in.NullSender {
		if err := check(SourceEnvelope, in.Sender); err != nil {
			return Decision{}, err
		}
	}
	for _, c := range in.Headers {
		if err := check(c.Source, c.Addr); err != nil {
			return Decision{}, err
		}
	}
	if decider >= 0 {
		d.Verdict = Reject
		d.Decider = &d.Checked[decider]
	}
	return d, nil
}

// allowed reports whether addr matches one of the canonical patterns, with the same
// probes as the rules (address, @host, .parent).
func allowed(patterns []string, addr string) bool {
	if len(patterns) == 0 {
		return false
	}
	for _, p := range rules.Probes(nil, addr) {
		for _, q := range patterns {
			if p == q {
				return true
			}
		}
	}
	return false
}
