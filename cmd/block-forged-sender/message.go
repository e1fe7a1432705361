package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"block-forged-sender/internal/address"
	"block-forged-sender/internal/header"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/qmail"
	"block-forged-sender/internal/rules"
)

// maxCandidates bounds the distinct sender addresses judged for one message. A message
// with more is judged on the first ones and, unless they reject it, fails temporarily:
// it never passes unchecked.
const maxCandidates = 4 * address.MaxCandidates

// errTooManyCandidates is returned for a message over maxCandidates.
var errTooManyCandidates = errors.New("too many sender addresses in the header")

// scanHeader copies the header section of r to w and returns the distinct sender
// candidates of its sender fields; tooMany reports that some were left out. The caller
// copies the body.
func scanHeader(r io.Reader, w io.Writer, c *config) (cands []policy.Candidate, n int64, tooMany bool, err error) {
	var addrs []address.Address
	seen := map[address.Address]bool{}
	n, err = header.Scan(r, w, c.headerOptions(), func(f header.Field) error {
		var aerr error
		addrs, aerr = address.CandidatesMax(addrs[:0], f.Value, address.MaxCandidates)
		tooMany = tooMany || aerr != nil
		for _, a := range addrs {
			if seen[a] {
				continue
			}
			if len(cands) == maxCandidates {
				tooMany = true
				break
			}
			seen[a] = true
			cands = append(cands, policy.Candidate{Source: f.Name, Addr: a})
		}
		return nil
	})
	return cands, n, tooMany, err
}

// trust returns why the client is trusted to pass unchecked, or "" when it is not.
// RELAYCLIENT is set (even empty) by tcprules for relay clients and by the common SMTP
// AUTH patches after a successful AUTH. TCPREMOTEINFO (IDENT) is never trusted: the
// client controls it.
func trust(c *config, e env) string {
	if c.trusted {
		return "bfs_trusted"
	}
	if _, ok := e("RELAYCLIENT"); ok && !c.ignoreRelayClient {
		return "relayclient"
	}
	return ""
}

// policyInput assembles what the policy needs from the envelope, the candidates and the
// client's environment.
func policyInput(c *config, e env, envl qmail.Envelope, cands []policy.Candidate) (policy.Input, error) {
	in := policy.Input{
		Headers:     cands,
		Trusted:     trust(c, e),
		Allow:       c.allow,
		DefaultHost: func() (string, error) { return defaultHost(c) },
	}
	if envl.Sender == "" {
		in.NullSender = true
	} else {
		a, err := address.ParseAddr(envl.Sender)
		if err != nil {
			return in, fmt.Errorf("%w: sender %q: %v", qmail.ErrBadEnvelope, envl.Sender, err)
		}
		in.Sender = a
	}
	for _, r := range envl.Recipients {
		a, err := address.ParseAddr(r)
		if err != nil {
			continue // an empty recipient matches no rcpt= pattern
		}
		in.Recipients = append(in.Recipients, a.Canonical())
	}
	ip := e.get("TCPREMOTEIP")
	if c.clientIP != "" {
		ip = c.clientIP
	}
	if addr, err := netip.ParseAddr(ip); err == nil {
		in.Client.ClientIP = addr.Unmap()
	}
	in.Client.ClientHost = e.get("TCPREMOTEHOST")
	return in, nil
}

// qmailControl is where qmail keeps its control files (conf-qmail).
const qmailControl = "/var/qmail/control/"

// defaultHost is the host qmail would add to an unqualified address: --default-host, else
// control/envnoathost, else control/me. It is read only when such an address is seen.
func defaultHost(c *config) (string, error) {
	if c.defaultHost != "" {
		return c.defaultHost, nil
	}
	for _, name := range []string{"envnoathost", "me"} {
		b, err := os.ReadFile(qmailControl + name)
		if err == nil {
			if h, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); h != "" {
				return h, nil
			}
			continue
		}
		if !os.IsNotExist(err) {
			return "", err
		}
	}
	return "", fmt.Errorf("no --default-host and no %senvnoathost or %sme", qmailControl, qmailControl)
}

// loadRules opens the rules list; every failure is a configuration fault.
func loadRules(c *config) (*rules.Set, rules.LoadInfo, error) {
	s, info, err := rules.Load(c.rules)
	if err != nil {
		return nil, info, &rulesError{err}
	}
	return s, info, nil
}

// rulesError marks a failure to read or compile the rules: qmail-queue's exit code 55.
type rulesError struct{ err error }

func (e *rulesError) Error() string { return e.err.Error() }
func (e *rulesError) Unwrap() error { return e.err }

// loadWarning is what the log line says when the rules were read from the text because
// the CDB could not be written: the admin must compile it.
func loadWarning(info rules.LoadInfo) string {
	if info.LastGood {
		return fmt.Sprintf("the rules text does not compile (%v): using %s, compiled from an earlier version; run: %s", info.Err, info.Source, info.Command)
	}
	if !info.InMemory {
		return ""
	}
	what := "has no compiled " + info.Source + ".cdb"
	if info.Stale {
		what = "is newer than " + info.Source + ".cdb"
	}
	return fmt.Sprintf("%s %s (read the text instead: %v); run: %s", info.Source, what, info.Err, info.Command)
}

// describeLoad says where the rules came from, for check.
func describeLoad(info rules.LoadInfo) string {
	switch {
	case info.LastGood:
		return info.Source + " (last good: the text does not compile)"
	case info.InMemory:
		return info.Source + " (text, read directly)"
	case info.Compiled:
		return fmt.Sprintf("%s (compiled now: %d entries)", info.Source, info.Entries)
	}
	return info.Source
}
