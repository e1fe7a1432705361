// Package milter serves the milter protocol (Postfix smtpd_milters, Sendmail INPUT_MAIL_FILTER)
// for the policy: each message gets a [policy.Judge], which the session feeds as the MTA
// speaks (the client at connect, the envelope sender at MAIL FROM, the recipients, each
// header field through [header.Readings], exactly as the qmail modes feed it from the
// stream). It answers "550 5.7.1 reason" on reject and a temporary "451 4.7.1" on any fault,
// at MAIL FROM when the envelope sender decides, else at the end of the header. The body is
// never sent to it.
//
// It does not log: it hands one [Entry] per message to [Config.Log], and counts verdicts and
// latency in [Metrics].
package milter

import (
	"net/netip"
	"time"

	"block-forged-sender/internal/policy"
)

// Stage says where a verdict was given.
type Stage string

// The stages at which the milter gives a verdict.
const (
	// StageMail: MAIL FROM; the client and envelope sender are known, no recipient yet.
	StageMail Stage = "mail"
	// StageHeader: end of the header section; everything but the body is known.
	StageHeader Stage = "header"
)

// Rules gives the list a decision uses: Acquire returns it and the function that releases
// it, and is called for each batch of look-ups (MAIL FROM, each header field, end of
// header), so a reload never waits for a slow SMTP client. [rules.Reloader] is one.
type Rules interface {
	Acquire() (policy.Lookuper, func())
}

// Verdict is what the milter told the MTA about one message.
type Verdict string

// The verdicts of an [Entry], and the verdict label of [Metrics].
const (
	VerdictPass     Verdict = "pass"     // accepted: no blocked address, or a trusted client
	VerdictReject   Verdict = "reject"   // refused with 550 5.7.1
	VerdictTempFail Verdict = "tempfail" // a fault, refused with 451 4.7.1
	VerdictFailOpen Verdict = "failopen" // a fault, accepted because of Config.FailOpen
)

// Entry describes one finished message, for the caller's one log line.
type Entry struct {
	Session    string // the milter connection, "1", "2", ...: every line of one SMTP session
	QueueID    string // the MTA's queue id ({i}); Postfix gives none before RCPT TO
	Stage      Stage  // where the verdict was given
	Verdict    Verdict
	Decision   policy.Decision // zero for a fault before any decision
	ClientIP   netip.Addr
	ClientHost string
	AuthUser   string
	Sender     string
	Recipients []string
	MessageID  string
	Err        error         // the fault, for VerdictTempFail and VerdictFailOpen
	Elapsed    time.Duration // from MAIL FROM to the verdict
}

// Config configures a [Server]. Policy and Rules are required; the zero value of the rest
// works.
type Config struct {
	Policy *policy.Config
	Rules  Rules

	// DefaultHost, if set, qualifies an unqualified address for a session, given the MTA's
	// own host name (macro j at connect: Postfix's $myhostname, Sendmail's $j; "" when the
	// MTA sent none), in place of Policy.DefaultHost.
	DefaultHost func(mtaHost string) (string, error)

	// MaxField caps one sender field's value, as for the qmail modes (header.Options); a
	// longer one is a fault. Zero means header.DefaultMaxField.
	MaxField int

	// FailOpen accepts a message on a fault instead of refusing it with 451.
	FailOpen bool

	// Log, if set, is called once for every message that got a verdict. It is called from
	// the connection's goroutine and must not block for long.
	Log func(Entry)

	// Metrics, if set, counts every verdict.
	Metrics *Metrics

	// ReadTimeout closes a milter connection idle for this long (default: never; the MTA
	// closes its connections itself). WriteTimeout bounds a reply (default 10 s).
	ReadTimeout, WriteTimeout time.Duration
}

// MaxRecipients bounds the recipients held for one message: far above any MTA's own limit
// (Postfix's smtpd_recipient_limit is 1000); past it the message is a fault.
const MaxRecipients = 100000
