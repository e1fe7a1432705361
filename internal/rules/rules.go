// Package rules turns a badsenders text file into rules, compiles them to a CDB, and
// answers the one question the filter asks: which rule, if any, covers this address.
//
// # Text format
//
// One entry per line (UTF-8; CRLF line ends are accepted):
//
//	user@host      that one address
//	@host          every address at exactly host (qmail badmailfrom syntax)
//	.host          every address at any subdomain of host, not host itself
//	!ENTRY [SCOPE...] [REASON]
//	               exception: an address matching ENTRY is never blocked by this list
//	:rcpthosts [control=DIR] [REASON]
//	               @d and .d for every domain d qmail accepts mail for (see below)
//
// After the entry, separated by blanks (spaces or tabs), come the scopes, only on an
// exception, and then the reason, which is the rest of the line with its outer blanks
// trimmed. A scope is a word NAME=VALUE; the scopes are (NAME in any case):
//
//	rcpt=PATTERN   the exception holds only when every recipient matches a rcpt= pattern
//	               (PATTERN is user@host, @host or .host); repeat the word for more patterns
//	client=VALUE   the exception holds only for a client whose IP is VALUE (an IP address or
//	               CIDR prefix) or whose host name is VALUE (host) or ends in VALUE (.host);
//	               repeat the word for more clients
//
// A word right after the entry (or its scopes) that has the form NAME=... (NAME: ASCII
// letters, digits and hyphens) is always taken for a scope, and an unknown NAME is an
// error that names the nearest scope ("clinet=": did you mean client=?): so a reason
// never starts with such a word. An exception's reason may moreover hold, anywhere, no
// word that looks like a scope (NAME=..., a word starting with '=', rcpt:... or
// client:...): a scope misspelt, put after the reason's first word or written with blanks
// around its '=' would otherwise be read as reason text, and the exception would hold
// for every recipient and client. No such word can narrow a block entry, whose reason
// may hold them after its first word ("spam score=10"). A reason that must say such a
// thing is reworded ("score 10").
//
// A line whose first non-blank character is '#' is a comment and blank lines are
// ignored; '#' anywhere else is ordinary text (qmail's badmailfrom has no comments at
// all, and a reason may contain '#'). Existing qmail control/badmailfrom files, which
// hold only @host and user@host lines, are valid rules files with the same meaning.
//
// Entries are compared in the canonical form of package address: the local part unquoted
// and lower-cased, the domain lower-cased without its trailing dot and in ACE form, so
// "Phisher"@Scam.Example. and phisher@scam.example are one entry, and @bücher.example and
// @xn--bcher-kva.example are one entry. A quoted local part may hold blanks.
//
// # Hosted domains
//
// A line ":rcpthosts" protects every domain the qmail host accepts mail for without
// listing them: it stands for @d and .d for each domain d of control/rcpthosts and
// control/morercpthosts.cdb (the cdb qmail-newmrh writes), and for .d alone where the
// file says ".d" (qmail's "every subdomain of d"), each with the line's reason and its
// file:line. The files are read when the list is compiled, from [DefaultControl] or the
// directory control= names (a relative one is taken from the rules file's directory);
// a missing rcpthosts is an error (without it qmail-smtpd accepts mail for every
// domain), a missing morercpthosts.cdb is not, and a line of either that is no domain
// name is a warning. The files' identities go into the CDB, and [Load] compiles again
// when either changes. Exceptions apply to these entries as to any other. No entry can
// start with ':' (an address has no ':' outside quotes, and a line without '@' other
// than .host was always an error), so no list that compiled before reads differently,
// and a badmailfrom file would need a line ":rcpthosts", matching only the sender
// address ":rcpthosts", to change meaning.
//
// # Mistakes
//
// [Parse], [Compile], [LoadText] and [Load] read the whole text and report every
// malformed line at once, in an [*ErrorList] of [*SyntaxError]s (FILE:LINE: MSG), the
// first [MaxErrors] of them; nothing is written then. A line is malformed when it holds a
// NUL byte, is longer than [MaxLine] bytes, holds invalid UTF-8 or a control character
// (other than a tab in the reason), its entry or a scope is malformed, it has an unknown
// or misplaced scope (above), or an entry that looks like a wildcard or a regular
// expression ("*@host", "@*.host", ".*@host\.example", "^user@host$": the message says
// what to write instead), a host with a character no domain name has, a label over 63
// octets or a name over 253 (in ACE form), or ".[literal]" (a domain literal has no
// subdomains).
//
// A list that compiles may still hold warnings, in its [Report]: an entry that repeats
// an earlier one (it is never used), an exception without scopes that cancels a block
// entry, an exception that no block entry needs (no address it matches is matched by a
// block entry: u@h needs u@h, @h or .p for a parent p of h; @h needs @h, .p, or some
// u@h; .h needs .h, .p, or some entry for a domain under h), and a reason that qmail's
// reply to the client cannot carry as it is (over 245 bytes, or not ASCII).
//
// # Rules version
//
// [Set.Version], [Report.Version] and [CDBVersion] give the rules version: 12 lowercase
// hexadecimal digits, a checksum of the compiled records computed when compiling and
// kept in the CDB, the same on every host that compiled the same list whatever its path
// or time, and the same for the in-memory rules of the same text.
//
// # Loading
//
// [Load] uses the CDB, compiling it first when the text is newer. When the text does not
// compile, it keeps using the last CDB compiled from it and [LoadInfo] says so
// (LastGood), as Postfix does with a map older than its source; where the CDB cannot be
// written, it parses the text into memory (InMemory).
package rules

import (
	"fmt"
	"net/netip"
	"strings"
)

// MaxLine is the longest line, in bytes without its line end, a rules file may hold.
const MaxLine = 64 << 10

// MaxErrors and MaxWarnings bound the mistakes an [ErrorList] or a [Report] lists; the
// rest are only counted.
const (
	MaxErrors   = 100
	MaxWarnings = 100
)

// Rule is one entry of a rules file.
type Rule struct {
	File  string // source file name, as given to [Parse] or [Compile]
	Line  int    // line number in File, from 1
	Entry string // the entry as written, with its '!' for an exception

	Key     string   // canonical pattern (user@host, @host or .host): the CDB key
	Except  bool     // an exception (!ENTRY)
	Rcpts   []string // canonical rcpt= patterns; empty: any recipient
	Clients []string // canonical client= values (IP, CIDR prefix, host or .host); empty: any client
	Reason  string   // the rest of the line, trimmed; may be empty
}

// Scope is what an exception's scopes are checked against.
type Scope struct {
	Recipients []string   // canonical recipient addresses
	ClientIP   netip.Addr // the client's IP address; invalid when unknown
	ClientHost string     // the client's host name (TCPREMOTEHOST); "" when unknown

	// RecipientsUnknown says the recipients are not known yet (a milter at MAIL FROM):
	// rcpt= scopes are then taken to hold, so that a rejection given without recipients
	// is one that no recipient could have averted. The verdict with recipients comes later.
	RecipientsUnknown bool
}

// Match is the result of [Set.Lookup].
type Match struct {
	Block  *Rule // the most specific block rule that matched, nil if none
	Except *Rule // an exception in scope that covers the address, nil if none
}

// Blocked reports whether the address is blocked: a block rule matched and no exception
// in scope covers it.
func (m Match) Blocked() bool { return m.Block != nil && m.Except == nil }

// SyntaxError reports a malformed line of a rules file.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

// Error returns "FILE:LINE: MSG".
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ErrorList is every malformed line of a rules text, in line order: [Parse], [Compile]
// and [Load] read the whole text and report all of its mistakes at once. errors.As finds
// a [*SyntaxError] in it (the first).
type ErrorList struct {
	Errors []*SyntaxError // the first MaxErrors mistakes
	More   int            // mistakes found beyond those
}

// Error returns the first mistake, and how many more there are, on one line (as
// go/scanner.ErrorList does); a caller that shows them all ranges over Errors.
func (l *ErrorList) Error() string {
	switch n := len(l.Errors) + l.More; {
	case n == 0:
		return "rules: no errors"
	case n == 1:
		return l.Errors[0].Error()
	case n == 2:
		return l.Errors[0].Error() + " (and 1 more error)"
	default:
		return fmt.Sprintf("%s (and %d more errors)", l.Errors[0], n-1)
	}
}

// Unwrap returns the listed mistakes, for errors.Is and errors.As.
func (l *ErrorList) Unwrap() []error {
	errs := make([]error, len(l.Errors))
	for i, e := range l.Errors {
		errs[i] = e
	}
	return errs
}

// add appends a mistake, or only counts it past MaxErrors.
func (l *ErrorList) add(file string, line int, msg string) {
	if len(l.Errors) < MaxErrors {
		l.Errors = append(l.Errors, &SyntaxError{file, line, msg})
	} else {
		l.More++
	}
}

func (l *ErrorList) empty() bool { return len(l.Errors) == 0 }

// err returns l as an error, or nil when it lists nothing.
func (l *ErrorList) err() error {
	if l.empty() {
		return nil
	}
	return l
}

// Warning is something in a rules text that compiles but is probably not what was meant:
// an entry that repeats an earlier one, a block entry an exception cancels, an exception
// that no block entry needs, a reason the SMTP reply cannot carry as it is.
type Warning struct {
	File string
	Line int // 0 when the warning is about a file as a whole, or a CDB record
	Msg  string
}

// String returns "FILE:LINE: MSG", or "FILE: MSG" without a line.
func (w Warning) String() string {
	if w.Line == 0 {
		return w.File + ": " + w.Msg
	}
	return fmt.Sprintf("%s:%d: %s", w.File, w.Line, w.Msg)
}

// Report says what [Compile] (or [LoadText]) made of a rules text.
type Report struct {
	Entries int    // rules compiled, those that :rcpthosts lines give included
	Domains int    // domains read from qmail's control files for :rcpthosts lines
	Version string // the rules version (see [Set.Version])

	Warnings     []Warning // the first MaxWarnings warnings, in line order
	MoreWarnings int       // warnings found beyond those
}

// Summary says it in a few words for a command's output: "2 entries, version
// 0123456789ab, 1 warning".
func (r Report) Summary() string {
	var b strings.Builder
	b.WriteString(plural(r.Entries, "entry", "entries"))
	if r.Domains > 0 {
		fmt.Fprintf(&b, " (%s from :rcpthosts)", plural(r.Domains, "domain", "domains"))
	}
	if r.Version != "" {
		b.WriteString(", version " + r.Version)
	}
	if n := len(r.Warnings) + r.MoreWarnings; n > 0 {
		b.WriteString(", " + plural(n, "warning", "warnings"))
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
