// Package qmail speaks qmail's queue interface: the envelope (from the environment, fd 3 or
// fd 1), the real qmail-queue as a child process, the custom-error pipe on fd 6, and the
// exit codes of qmail-queue(8).
package qmail

// Exit codes of qmail-queue(8). qmail-smtpd turns 11-40 into permanent 554 replies and every
// other non-zero code into a temporary 451, except 99, which qmail-qfilter takes as "drop
// the message silently". Only [ExitRejected] and [ExitCustomError] refuse mail for good.
const (
	ExitOK          = 0  // queued, or passed on by a filter
	ExitRejected    = 31 // mail server permanently refuses the message (a rule matched)
	ExitOutOfMemory = 51 // out of memory: a limit (--max-field, a memory limit) was hit
	ExitTimeout     = 52 // timeout
	ExitWriteError  = 53 // write error, e.g. disk full
	ExitReadError   = 54 // unable to read the message or envelope
	ExitConfigError = 55 // unable to read a configuration file (the rules)
	ExitInternalBug = 81 // internal bug
	ExitCustomError = 82 // custom-error patch: the reply text was written to fd 6
	ExitBadEnvelope = 91 // envelope format error
)

// Temporary reports whether qmail-smtpd answers code with a temporary (4xx) reply and
// qmail-qfilter does not drop the message: the codes an internal fault may use.
func Temporary(code int) bool {
	return code != 0 && (code < 11 || code > 40) && code != 99 && code != ExitCustomError
}
