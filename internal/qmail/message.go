package qmail

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"block-forged-sender/internal/header"
)

// ScanFunc copies the header section of a message from r to w, every byte it reads
// (header.Scan with the caller's callback), and returns the bytes written.
type ScanFunc func(r io.Reader, w io.Writer) (int64, error)

// CopyError is a failure to copy the body of a message. io.Copy through
// copy_file_range or splice(2) reports one error for both sides; Write says whose fault
// it was, as far as the errno tells.
type CopyError struct {
	Err   error
	Write bool // the output failed (full disk, a closed pipe); else the input
}

func (e *CopyError) Error() string { return "copying the message: " + e.Err.Error() }
func (e *CopyError) Unwrap() error { return e.Err }

// writeErrnos are the errors of a copy that are the output's fault.
var writeErrnos = []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG, syscall.EPIPE, syscall.ECONNRESET, syscall.EBADF}

func copyError(err error) *CopyError {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &CopyError{Err: err, Write: pe.Op == "write"}
	}
	for _, errno := range writeErrnos {
		if errors.Is(err, errno) {
			return &CopyError{Err: err, Write: true}
		}
	}
	return &CopyError{Err: err}
}

// CopyMessage copies the message from in to out: its header section through scan (nil:
// none, the message is copied as it is), then the rest without passing it through user
// space where the kernel allows (copy_file_range between files, splice between pipes).
// Nothing but what scan holds is kept in memory. A scan error is returned as it is; a
// body copy error as a *[CopyError].
func CopyMessage(out io.Writer, in io.Reader, scan ScanFunc) (n int64, err error) {
	if scan != nil {
		n, err = scan(in, out)
		if err != nil {
			return n, err
		}
	}
	var m int64
	if fo, ok := out.(*os.File); ok {
		if fi, ok := in.(*os.File); ok {
			m, err = Copy(fo, fi)
		} else {
			m, err = io.Copy(fo, in)
		}
	} else {
		m, err = io.Copy(out, in)
	}
	n += m
	if err != nil {
		return n, copyError(err)
	}
	return n, nil
}

// ErrEnvelopeRead marks a fault reading the envelope descriptor (not its format).
var ErrEnvelopeRead = errors.New("qmail: reading the envelope")

// Delivery is what happened to one message in queue mode.
type Delivery struct {
	Size     int64    // message bytes streamed into qmail-queue
	Envelope Envelope // the envelope qmail-smtpd gave, once read
	HaveEnv  bool
	// QueueExit is qmail-queue's exit code once it ran to its end (Committed or refused):
	// its own verdict on the message, which the caller passes on.
	QueueExit int
	Committed bool // qmail-queue got the envelope and queued the message (QueueExit 0)
	Ran       bool // QueueExit is set
}

// Deliver runs one message through the real qmail-queue q, in queue mode: it streams the
// message from in into q (the header through scan), reads the envelope from env
// (qmail-smtpd writes it only after the whole message), asks judge, and gives q the
// envelope only when judge says pass; otherwise q gets none and queues nothing.
//
// A copy that fails because qmail-queue stopped reading is qmail-queue's verdict: its exit
// code is in the Delivery (Ran). Every other error aborts q and is returned; a malformed
// envelope wraps [ErrBadEnvelope], an unreadable one [ErrEnvelopeRead]; judge's error is
// returned as it is.
func Deliver(q *Queue, in, env *os.File, scan ScanFunc, judge func(Envelope) (pass bool, err error)) (Delivery, error) {
	var d Delivery
	var err error
	d.Size, err = CopyMessage(q.Message, in, scan)
	if err != nil {
		var ce *CopyError
		if errors.As(err, &ce) && ce.Write || isWriteIOError(err) {
			// qmail-queue stopped reading: its own exit code says why.
			if code, werr := q.Wait(); werr == nil && code != ExitOK {
				d.QueueExit, d.Ran = code, true
				return d, nil
			}
			return d, err
		}
		q.Abort()
		return d, err
	}
	d.Envelope, err = ReadEnvelope(env, MaxEnvelope)
	if err != nil {
		q.Abort()
		if !errors.Is(err, ErrBadEnvelope) {
			err = fmt.Errorf("%w: %v", ErrEnvelopeRead, err)
		}
		return d, err
	}
	d.HaveEnv = true
	pass, err := judge(d.Envelope)
	if err != nil || !pass {
		q.Abort()
		return d, err
	}
	code, err := q.Commit(d.Envelope.Raw)
	if err != nil {
		return d, err
	}
	d.QueueExit, d.Ran, d.Committed = code, true, code == ExitOK
	return d, nil
}

// isWriteIOError reports whether err is the header scanner's failure to write.
func isWriteIOError(err error) bool {
	var ioe *header.IOError
	return errors.As(err, &ioe) && ioe.Op == "write"
}
