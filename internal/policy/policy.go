// Package policy decides whether a message passes. It owns the whole decision: whether the
// client is trusted, which addresses a reader could take for the sender (every candidate of
// every sender field reading, looked up as it is found), how an unqualified one is
// qualified, exceptions and allowed patterns, monitor mode, and the rule that a decision
// that could not be completed never passes. The qmail modes, check and the milter only feed
// a [Judge] and map its [Decision] to an exit code, a printed explanation or an SMTP reply.
// It does no I/O of its own and no logging.
package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"block-forged-sender/internal/address"
	"block-forged-sender/internal/header"
	"block-forged-sender/internal/rules"
)

// Verdict is the outcome for one message.
type Verdict string

const (
	// Pass: no blocked address (or a trusted client, or monitor mode).
	Pass Verdict = "pass"
	// Reject: a blocked address that no exception covers.
	Reject Verdict = "reject"
	// TempFail: the decision could not be completed; Decision.Err says why.
	TempFail Verdict = "tempfail"
	// Pending: nothing blocked so far, but the message is not fully seen yet (the milter at
	// MAIL FROM). A final verdict is never Pending: the callers treat it as a fault.
	Pending Verdict = "pending"
)

// Mode is what a rejection does.
type Mode string

const (
	ModeReject  Mode = "reject"  // refuse the message
	ModeMonitor Mode = "monitor" // pass it, and say it would have been refused
)

// Sources of a checked address besides the header field names.
const SourceEnvelope = "envelope"

// Trust reasons: why a client passes unchecked.
const (
	TrustRelayClient = "relayclient" // qmail: RELAYCLIENT set (tcprules, SMTP AUTH patches)
	TrustConfigured  = "bfs_trusted" // qmail: BFS_TRUSTED or --trusted for this client
	TrustAuth        = "auth"        // milter: SMTP AUTH ({auth_authen})
	TrustNetwork     = "network"     // milter: the client is in --trusted-networks
)

// Config is what every message of a run is judged with.
type Config struct {
	Mode            Mode
	Allow           []string // canonical patterns these clients may use (BFS_ALLOW)
	AllSenderFields bool     // Sender and Resent-From as well as From
	// DefaultHost returns the host that qualifies an unqualified address, as the MTA
	// would deliver a reply to it (qmail's control/envnoathost). It is called only when
	// such an address is seen.
	DefaultHost func() (string, error)
	// IgnoreRelayClient: RELAYCLIENT is set for every client (spamdyke) and means nothing.
	IgnoreRelayClient bool
	// TrustedNetworks: clients that pass unchecked (the milter's --trusted-networks).
	TrustedNetworks []netip.Prefix
	// Explain keeps every address looked at in Decision.Checked (check prints them).
	Explain bool
}

// Client is the SMTP client of one message, as the MTA describes it.
type Client struct {
	IP          netip.Addr // invalid when unknown
	Host        string     // its verified host name, "" when unknown
	RelayClient bool       // qmail: RELAYCLIENT is set
	Trusted     bool       // qmail: trusted by configuration (BFS_TRUSTED)
	AuthUser    string     // the SMTP AUTH login; "" when not authenticated
}

// Checked is one address looked at, and what the rules said of it.
type Checked struct {
	Source    string // SourceEnvelope, or the header field: "From", "Sender", "Resent-From"
	Address   string // as found: local@domain, case kept (qualified when it was not)
	Canonical string // the form looked up
	Allowed   bool   // covered by Config.Allow
	Match     rules.Match
}

// Blocked reports whether the address blocks the message.
func (c *Checked) Blocked() bool { return !c.Allowed && c.Match.Blocked() }

// Decision is the verdict on one message, with what decided it.
type Decision struct {
	Verdict Verdict
	Trusted string // the trust that let the message pass unchecked, if any
	// Decider is the address that rejects the message (or would have, in monitor mode):
	// the envelope sender if it is blocked, else the first blocked header address.
	Decider *Checked
	// WouldReject: monitor mode passed a message that Decider blocks.
	WouldReject bool
	// Excepted is the first address a block rule matched that an exception or an allowed
	// pattern let through: what to name when a pass needs explaining.
	Excepted *Checked
	Err      error     // TempFail: why no decision could be made
	Checked  []Checked // with Config.Explain: every address looked at, in order
	// From holds the first header addresses seen (each once, as found) and FromCount how
	// many distinct ones there were, for the log line.
	From      []string // each cut to 256 bytes
	FromCount int
}

// Rule returns the block rule of the deciding address, or nil.
func (d Decision) Rule() *rules.Rule {
	if d.Decider == nil {
		return nil
	}
	return d.Decider.Match.Block
}

// DefaultReason is the reason given for a rule that gives none.
const DefaultReason = "sender address rejected"

// Reason returns the reason of the deciding rule, or [DefaultReason] when it gave none.
func (d Decision) Reason() string {
	if r := d.Rule(); r != nil && r.Reason != "" {
		return r.Reason
	}
	if d.Decider != nil {
		return DefaultReason
	}
	return ""
}

// Lookuper is the rules list: [rules.Set] in production.
type Lookuper interface {
	Lookup(addr string, sc rules.Scope) (rules.Match, error)
}

// Errors that make a decision impossible: the callers fail temporarily.
var (
	// ErrNoDefaultHost: an unqualified address must be qualified and no host is known.
	ErrNoDefaultHost = errors.New("policy: unqualified address and no default host")
	// ErrNoRules: a client that is not trusted, and no rules to judge it with.
	ErrNoRules = errors.New("policy: no rules")
)

// maxFrom is how many header addresses Decision.From keeps.
const maxFrom = 20

// maxSeen and maxSeenBytes bound the addresses remembered to look each up once: past them,
// an address seen twice is simply looked up twice. Work stays linear in the header, memory
// bounded by about one sender field (many fields of long addresses held 240 MB before).
const (
	maxSeen      = 1 << 16
	maxSeenBytes = 256 << 10
)

// maxFromLen bounds one address kept in Decision.From: a sender field may hold an address
// of a megabyte, which no log line needs whole.
const maxFromLen = 256

// Judge collects what is known of one message and decides. Feed it in any order: the
// envelope sender ([Judge.Sender]), the recipients ([Judge.Recipients]), each header sender
// field reading ([Judge.Field]) and the end of the header ([Judge.HeaderDone]); then ask
// [Judge.Decide]. Every address is looked up as soon as it is found, so a field with
// thousands of mailboxes is judged in full at no more memory than the field itself. A Judge
// is not safe for concurrent use.
type Judge struct {
	cfg     *Config
	rules   Lookuper
	trusted string
	scope   rules.Scope

	senderSet  bool
	rcptsSet   bool
	headerDone bool
	err        error

	env     *Checked // the envelope sender, once looked up (nil for <>)
	hdr     *Checked // the first blocked header address
	except  *Checked // the first address an exception or Allow let through
	pending []Checked
	checked []Checked
	seen    map[string]struct{}
	seenLen int // bytes of the addresses in seen
	from    []string
	nfrom   int
	cands   []address.Address
	charset []string // the charsets the header declares, so far
}

// NewJudge starts judging a message from client. Whether the client is trusted is decided
// here: see [Judge.Trusted].
func NewJudge(cfg *Config, client Client) *Judge {
	j := &Judge{cfg: cfg}
	j.scope.ClientIP, j.scope.ClientHost = client.IP.Unmap(), client.Host
	j.scope.RecipientsUnknown = true
	switch {
	case client.Trusted:
		j.trusted = TrustConfigured
	case client.RelayClient && !cfg.IgnoreRelayClient:
		j.trusted = TrustRelayClient
	case client.AuthUser != "":
		j.trusted = TrustAuth
	case inNetworks(cfg.TrustedNetworks, client.IP):
		j.trusted = TrustNetwork
	}
	return j
}

func inNetworks(nets []netip.Prefix, ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Trusted returns why the client passes unchecked, or "": the caller need not load the
// rules nor scan the header for a trusted client.
func (j *Judge) Trusted() string { return j.trusted }

// Use sets the rules to judge with; a Judge of an untrusted client needs them before its
// first address.
func (j *Judge) Use(l Lookuper) { j.rules = l }

// Fail records a fault that makes the decision impossible (the message could not be
// read, a limit was hit): the verdict is TempFail with the first such error.
func (j *Judge) Fail(err error) {
	if err != nil && j.err == nil {
		j.err = err
	}
}

// Sender sets the envelope sender as received ("" is the null sender <>, which is never
// looked up: bounces are not blocked by their envelope alone) and looks it up.
func (j *Judge) Sender(sender string) {
	j.senderSet = true
	if j.trusted != "" || sender == "" {
		return
	}
	a, err := address.ParseAddr(sender)
	if err != nil {
		return // only an empty address fails to parse: the null sender
	}
	if c, ok := j.look(SourceEnvelope, a); ok {
		j.env = &c
	}
}

// Recipients sets the recipients (canonical forms are made here). Until they are set, an
// exception scoped to recipients (rcpt=) is taken to hold, and an address it covers is
// looked up again once they are known.
func (j *Judge) Recipients(rcpts []string) {
	j.rcptsSet = true
	j.scope.RecipientsUnknown = false
	j.scope.Recipients = j.scope.Recipients[:0]
	for _, r := range rcpts {
		if a, err := address.ParseAddr(r); err == nil {
			j.scope.Recipients = append(j.scope.Recipients, a.Canonical())
		}
	}
	if j.trusted != "" || j.err != nil {
		return
	}
	if j.env != nil && needsRecipients(j.env) {
		c := j.relook(*j.env)
		j.env = &c
	}
	pending := j.pending
	j.pending = nil
	for _, c := range pending {
		if c = j.relook(c); c.Blocked() && j.hdr == nil {
			j.hdr = &c
		}
	}
}

// Field judges every address of one header sender field reading (see [header.Readings]);
// its error stops the caller's scan: the decision is TempFail then.
func (j *Judge) Field(r header.Reading) error {
	if j.trusted != "" {
		return nil
	}
	if j.err != nil {
		return j.err
	}
	if r.Name != "From" && !j.cfg.AllSenderFields {
		return nil
	}
	var err error
	j.cands, err = address.CandidatesIn(j.cands[:0], r.Value, j.charset)
	j.Fail(err) // the candidates found are looked up all the same; the verdict is TempFail
	for _, a := range j.cands {
		c, ok := j.look(r.Name, a)
		if !ok {
			continue
		}
		if c.Blocked() && j.hdr == nil {
			j.hdr = &c
		}
	}
	return j.err
}

// maxCharsets bounds the charsets a header declares that are kept; maxCharsetName the
// length of one.
const (
	maxCharsets    = 4
	maxCharsetName = 64
)

// ContentType takes the value of a top-level Content-Type field: raw 8-bit bytes in the
// sender fields after it are also read in the charset it declares, as readers such as
// Thunderbird decode them (a full-width ＠ in Shift_JIS is two bytes that are no '@').
// A sender field before it is read in address.FallbackCharsets only.
func (j *Judge) ContentType(value []byte) {
	cs := contentTypeCharset(value)
	if cs == "" || len(j.charset) >= maxCharsets || len(cs) > maxCharsetName {
		return
	}
	for _, c := range j.charset {
		if strings.EqualFold(c, cs) {
			return
		}
	}
	j.charset = append(j.charset, cs)
}

// contentTypeCharset returns the charset parameter of a Content-Type value, read as
// leniently as readers do: any case, blanks and line ends around the '=', quoted or not,
// the RFC 2231 form (charset*=”koi8-r) too; "" if there is none. A ';' inside a quoted
// parameter before it is taken for a separator: the worst that does is find a charset
// the message does not declare, which only adds a reading.
func contentTypeCharset(v []byte) string {
	s := string(v)
	for {
		i := strings.IndexByte(s, ';')
		if i < 0 {
			return ""
		}
		s = s[i+1:]
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			return ""
		}
		key = strings.ToLower(strings.Trim(key, " \t\r\n"))
		if key != "charset" && key != "charset*" && key != "charset*0" && key != "charset*0*" {
			continue
		}
		rest = strings.TrimLeft(rest, " \t\r\n")
		var val string
		if strings.HasPrefix(rest, "\"") {
			val, _, _ = strings.Cut(rest[1:], "\"")
		} else {
			end := strings.IndexAny(rest, "; \t\r\n")
			if end < 0 {
				end = len(rest)
			}
			val = rest[:end]
		}
		if strings.HasSuffix(key, "*") {
			// RFC 2231: charset'language'value, the value percent-encoded (a charset name
			// needs no escapes).
			if parts := strings.SplitN(val, "'", 3); len(parts) == 3 {
				val = strings.Trim(parts[2], "\"")
			}
		}
		return val
	}
}

// HeaderDone says the header has been read to its end (err nil), or why it could not be
// (err is recorded as with [Judge.Fail]). Until then the verdict is never Pass.
func (j *Judge) HeaderDone(err error) {
	j.Fail(err)
	j.headerDone = err == nil
}

// look qualifies, canonicalises and looks up one address unless it was seen already; ok
// is false when it was, or on a fault (recorded).
func (j *Judge) look(source string, a address.Address) (Checked, bool) {
	if j.err != nil {
		return Checked{}, false
	}
	if j.rules == nil {
		j.err = ErrNoRules
		return Checked{}, false
	}
	if a.Domain == "" {
		// An unqualified address is qualified as the MTA would deliver a reply to it, so
		// MAIL FROM:<ceo> cannot make a remote client look local without meeting the
		// rules for the local domain.
		host, err := j.defaultHost()
		if err != nil {
			j.err = err
			return Checked{}, false
		}
		a.Domain = host
	}
	c := Checked{Source: source, Address: a.String(), Canonical: a.Canonical()}
	// Header addresses are looked up once each; the envelope sender is apart, so that
	// the order in which they arrive does not change what decides.
	if source != SourceEnvelope {
		if j.seen == nil {
			j.seen = make(map[string]struct{})
		}
		if _, dup := j.seen[c.Canonical]; dup {
			return Checked{}, false
		}
		if len(j.seen) < maxSeen && j.seenLen+len(c.Canonical) <= maxSeenBytes {
			j.seen[c.Canonical] = struct{}{}
			j.seenLen += len(c.Canonical)
			j.nfrom++
			if len(j.from) < maxFrom {
				a := c.Address
				if len(a) > maxFromLen {
					a = a[:maxFromLen] + "..."
				}
				j.from = append(j.from, strings.Clone(a))
			}
		}
	}
	c = j.relook(c)
	if c.Match.Block != nil && !c.Blocked() && j.except == nil {
		e := c
		j.except = &e
	}
	if !j.rcptsSet && needsRecipients(&c) {
		j.pending = append(j.pending, c)
	}
	if j.cfg.Explain {
		if source == SourceEnvelope {
			j.checked = append([]Checked{c}, j.checked...) // listed first, whenever it came
		} else {
			j.checked = append(j.checked, c)
		}
	}
	return c, j.err == nil
}

// relook looks c up (again) in the current scope.
func (j *Judge) relook(c Checked) Checked {
	c.Allowed = allowed(j.cfg.Allow, c.Canonical)
	if c.Allowed {
		c.Match = rules.Match{}
		if m, err := j.rules.Lookup(c.Canonical, j.scope); err == nil {
			c.Match.Block = m.Block // shown by check; the address is allowed anyway
		}
		return c
	}
	m, err := j.rules.Lookup(c.Canonical, j.scope)
	if err != nil {
		j.Fail(err)
		return c
	}
	c.Match = m
	if j.cfg.Explain {
		for i := range j.checked {
			if j.checked[i].Canonical == c.Canonical {
				j.checked[i].Match = m
			}
		}
	}
	return c
}

// needsRecipients reports whether c passed only by an exception scoped to recipients,
// which holds for every recipient only once they are known.
func needsRecipients(c *Checked) bool {
	return !c.Allowed && c.Match.Block != nil && c.Match.Except != nil && len(c.Match.Except.Rcpts) > 0
}

func (j *Judge) defaultHost() (string, error) {
	if j.cfg.DefaultHost == nil {
		return "", ErrNoDefaultHost
	}
	host, err := j.cfg.DefaultHost()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoDefaultHost, err)
	}
	if host == "" {
		return "", ErrNoDefaultHost
	}
	return host, nil
}

// Decide returns the verdict on what the Judge has seen. It is Pass only when the client is
// trusted, or the sender, the recipients and the whole header have been seen and nothing
// in them is blocked; a fault gives TempFail, a blocked address Reject (Pass with
// WouldReject in monitor mode), and a message not fully seen Pending.
func (j *Judge) Decide() Decision {
	d := Decision{Verdict: Pass, Trusted: j.trusted, Checked: j.checked, From: j.from, FromCount: j.nfrom, Excepted: j.except}
	switch {
	case j.trusted != "":
		return Decision{Verdict: Pass, Trusted: j.trusted}
	case j.err != nil:
		d.Verdict, d.Err = TempFail, j.err
		return d
	}
	d.Decider = j.hdr
	if j.env != nil && j.env.Blocked() {
		d.Decider = j.env
	}
	switch {
	case d.Decider != nil && j.cfg.Mode == ModeMonitor:
		d.WouldReject = true // the verdict stays Pass, complete or not
	case d.Decider != nil:
		d.Verdict = Reject // one blocked address is enough, whatever is still to come
	case !j.senderSet || !j.headerDone || (!j.rcptsSet && (len(j.pending) > 0 || j.env != nil && needsRecipients(j.env))):
		d.Verdict = Pending
	}
	return d
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
