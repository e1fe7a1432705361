// Package milter serves the milter protocol (Postfix smtpd_milters, Sendmail INPUT_MAIL_FILTER):
// it gathers each message's client, envelope and header section, asks a [Decider] for the
// verdict at MAIL FROM and again at the end of the headers, and answers the MTA with
// "550 5.7.1 reason" on reject and a temporary "451 4.7.1" on any internal fault.
//
// The package knows nothing about rules: the verdict comes from the Decider, which the
// command builds on the header, address and policy packages, so a message gets the same
// verdict whichever way it arrives. It does not log either: it hands one [Entry] per message
// to [Config.Log], and counts verdicts and latency in [Metrics].
package milter

import (
	"net/netip"
	"time"
)

// Stage says how much of a message a [Decider] sees.
type Stage string

// The stages at which the milter asks for a verdict.
const (
	// StageMail: MAIL FROM; the client and envelope sender are known, no recipient yet.
	StageMail Stage = "mail"
	// StageHeader: end of the header section; everything but the body is known.
	StageHeader Stage = "header"
)

// Input is what the milter knows about one message when it asks for a verdict.
type Input struct {
	Stage      Stage
	QueueID    string     // the MTA's queue id (macro {i}); may be "" at StageMail
	ClientIP   netip.Addr // the SMTP client; invalid when the MTA gave none (local, unknown)
	ClientHost string     // the client's verified host name; "" when unknown
	AuthUser   string     // SASL login name ({auth_authen}); "" when not authenticated
	// MTAHost is the MTA's own host name, macro j at connect: Postfix's $myhostname,
	// Sendmail's $j. "" when the MTA sent none. With it a Decider can qualify an
	// unqualified address as the MTA does (Postfix appends $myorigin, which is
	// $myhostname unless set otherwise).
	MTAHost    string
	Sender     string   // MAIL FROM address without angle brackets; "" is the null sender
	Recipients []string // RCPT TO addresses without angle brackets, in order; none at StageMail

	// Header is the header section at StageHeader, rebuilt from the fields the MTA passed as
	// "Name:value\r\n" lines (the value as the MTA gave it, leading white space and folds
	// included) and a final "\r\n": the bytes header.Scan reads in the qmail modes. It is
	// only valid during Decide.
	Header []byte
}

// Result is a [Decider]'s verdict on a message.
type Result struct {
	Reject bool
	// Reason is the rule's reason, sent as "550 5.7.1 Reason"; "" sends [DefaultReason].
	Reason  string
	Source  string // the field that decided: "envelope", "From", "Sender", "Resent-From"
	Address string // the address that decided
	Rule    string // where the rule is written ("badsenders:12"), for the log
}

// DefaultReason is the reply text for a rejection whose rule gives no reason.
const DefaultReason = "sender address rejected"

// A Decider gives the verdict on a message. It is called at [StageMail] and, unless that
// rejected, at [StageHeader] with the envelope again. At StageMail the recipients are not
// known yet, so a Decider must not reject there on a rule whose recipient-scoped exception
// could still apply: it passes, and the StageHeader call, which has the recipients, decides.
// An error is an internal fault: the message is refused temporarily (or accepted, with
// [Config.FailOpen]), never rejected. Decide is called from many goroutines at once.
type Decider interface {
	Decide(in *Input) (Result, error)
}

// DeciderFunc adapts a function to a [Decider].
type DeciderFunc func(in *Input) (Result, error)

// Decide calls f(in).
func (f DeciderFunc) Decide(in *Input) (Result, error) { return f(in) }

// Verdict is what the milter told the MTA about one message.
type Verdict string

// The verdicts of an [Entry], and the verdict label of [Metrics].
const (
	VerdictPass     Verdict = "pass"     // accepted: no blocked address, or a trusted client
	VerdictReject   Verdict = "reject"   // refused with 550 5.7.1
	VerdictTempFail Verdict = "tempfail" // internal fault, refused with 451 4.7.1
	VerdictFailOpen Verdict = "failopen" // internal fault, accepted because of Config.FailOpen
)

// Entry describes one finished message, for the caller's one log line.
type Entry struct {
	QueueID    string
	Stage      Stage // where the verdict was given
	Verdict    Verdict
	Trusted    bool // passed unchecked: authenticated, or the client is in Config.TrustedNets
	ClientIP   netip.Addr
	ClientHost string
	AuthUser   string
	Sender     string
	Recipients []string
	Result     Result        // the Decider's result (zero for trusted and faults)
	Err        error         // the fault, for VerdictTempFail and VerdictFailOpen
	Elapsed    time.Duration // from MAIL FROM to the verdict
}

// Config configures a [Server]. Decider is required; the zero value of the rest works.
type Config struct {
	Decider Decider

	// TrustedNets are client networks that pass unchecked (like Postfix's mynetworks).
	// Authenticated sessions ({auth_authen} set) always pass unchecked.
	TrustedNets []netip.Prefix

	// FailOpen accepts a message on an internal fault instead of refusing it with 451.
	FailOpen bool

	// MaxHeader caps the header and recipient bytes held per message (default 1 MiB).
	// A message over the cap is an internal fault ([ErrHeaderTooLarge]), never a skipped field.
	MaxHeader int

	// Log, if set, is called once for every message that got a verdict. It is called from
	// the connection's goroutine and must not block for long.
	Log func(Entry)

	// Metrics, if set, counts every verdict.
	Metrics *Metrics

	// ReadTimeout closes a milter connection idle for this long (default: never; the MTA
	// closes its connections itself). WriteTimeout bounds a reply (default 10 s).
	ReadTimeout, WriteTimeout time.Duration
}

// DefaultMaxHeader is the default [Config.MaxHeader].
const DefaultMaxHeader = 1 << 20
