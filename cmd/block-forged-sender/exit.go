package main

import (
	"errors"
	"io/fs"
	"os"
	"syscall"

	"block-forged-sender/internal/cdb"
	"block-forged-sender/internal/header"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/qmail"
)

// errTimeout is returned when --timeout expires.
var errTimeout = errors.New("timed out")

// copyError tells which side of a body copy failed: io.Copy through copy_file_range or
// splice reports one error for both.
type copyError struct{ err error }

func (e *copyError) Error() string { return "copying the message: " + e.err.Error() }
func (e *copyError) Unwrap() error { return e.err }

// write reports whether a copy error is the output's fault.
func (e *copyError) write() bool {
	var pe *fs.PathError
	if errors.As(e.err, &pe) && pe.Op == "read" {
		return false
	}
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG, syscall.EPIPE, syscall.ECONNRESET, syscall.EBADF} {
		if errors.Is(e.err, errno) {
			return true
		}
	}
	return errors.As(e.err, &pe) && pe.Op == "write"
}

// exitCode is the one place where an error becomes a qmail-queue(8) exit code. Every
// error is a temporary failure: an unforeseen one is 81, never 0 (mail unchecked), 31 (mail
// refused for our fault) or 99 (qmail-qfilter would drop the mail).
func exitCode(err error) int {
	var (
		ioErr   *header.IOError
		cpErr   *copyError
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
	case errors.As(err, &rlErr), errors.Is(err, policy.ErrNoDefaultHost), errors.Is(err, errConfig),
		errors.Is(err, cdb.ErrCorrupt): // a look-up in a corrupt rules CDB
		return qmail.ExitConfigError
	case errors.As(err, &ioErr):
		if ioErr.Op == "write" {
			return qmail.ExitWriteError
		}
		return qmail.ExitReadError
	case errors.Is(err, header.ErrFieldTooLong), errors.Is(err, errTooManyCandidates):
		return qmail.ExitReadError
	case errors.As(err, &cpErr):
		if cpErr.write() {
			return qmail.ExitWriteError
		}
		return qmail.ExitReadError
	case errors.Is(err, errOutputClosed):
		return qmail.ExitWriteError
	case errors.Is(err, errEnvelopeRead), errors.Is(err, errInputClosed):
		return qmail.ExitReadError
	case errors.As(err, &pathErr) && pathErr.Op == "read":
		return qmail.ExitReadError
	}
	return qmail.ExitInternalBug
}

// errConfig marks a bad flag or environment setting.
var errConfig = errors.New("configuration")

// errEnvelopeRead marks a fault reading the envelope descriptor.
var errEnvelopeRead = errors.New("reading the envelope")

// errInputClosed and errOutputClosed mark fd 0 or fd 1 closed by the caller.
var (
	errInputClosed  = errors.New("fd 0 (the message) is closed")
	errOutputClosed = errors.New("fd 1 (the output) is closed")
)
