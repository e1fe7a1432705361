package main

import (
	"errors"
	"os"

	"block-forged-sender/internal/address"
	"block-forged-sender/internal/cdb"
	"block-forged-sender/internal/header"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/qmail"
)

// errTimeout is returned when --timeout expires.
var errTimeout = errors.New("timed out")

// exitCode is the one place where an error becomes a qmail-queue(8) exit code. Every
// error is a temporary failure: an unforeseen one is 81, never 0 (mail unchecked), 31 (mail
// refused for our fault) or 99 (qmail-qfilter would drop the mail).
func exitCode(err error) int {
	var (
		ioErr   *header.IOError
		cpErr   *qmail.CopyError
		rlErr   *rulesError
		pathErr *os.PathError
	)
	switch {
	case err == nil:
		return qmail.ExitOK
	case errors.Is(err, errTimeout):
		return qmail.ExitTimeout
	case errors.Is(err, qmail.ErrBadEnvelope):
		return qmail.ExitBadEnvelope
	case errors.As(err, &rlErr), errors.Is(err, policy.ErrNoDefaultHost), errors.Is(err, policy.ErrNoRules),
		errors.Is(err, errConfig), errors.Is(err, cdb.ErrCorrupt): // a look-up in a corrupt rules CDB
		return qmail.ExitConfigError
	case errors.Is(err, header.ErrFieldTooLong), errors.Is(err, address.ErrTooCostly):
		// A limit: the field would need more memory than --max-field allows, or more
		// work than a field of raw 8-bit bytes is given.
		return qmail.ExitOutOfMemory
	case errors.As(err, &ioErr):
		if ioErr.Op == "write" {
			return qmail.ExitWriteError
		}
		return qmail.ExitReadError
	case errors.As(err, &cpErr):
		if cpErr.Write {
			return qmail.ExitWriteError
		}
		return qmail.ExitReadError
	case errors.Is(err, errOutputClosed):
		return qmail.ExitWriteError
	case errors.Is(err, qmail.ErrEnvelopeRead), errors.Is(err, errInputClosed):
		return qmail.ExitReadError
	case errors.As(err, &pathErr) && pathErr.Op == "read":
		return qmail.ExitReadError
	}
	return qmail.ExitInternalBug
}

// errInputClosed and errOutputClosed mark fd 0 or fd 1 closed by the caller.
var (
	errInputClosed  = errors.New("fd 0 (the message) is closed")
	errOutputClosed = errors.New("fd 1 (the output) is closed")
)
