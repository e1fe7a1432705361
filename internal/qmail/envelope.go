package qmail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Envelope is the SMTP envelope of one message, as qmail-smtpd hands it to qmail-queue.
type Envelope struct {
	Sender     string   // as received; "" for the null sender <>
	Recipients []string // as received
	Raw        []byte   // the qmail-queue form, to pass on unchanged (nil when from the environment)
}

// MaxEnvelope caps the size of an envelope read from a descriptor. qmail-smtpd limits one
// address to about 1000 bytes; 16 MiB holds some 16,000 recipients of that length.
const MaxEnvelope = 16 << 20

// ErrBadEnvelope wraps every envelope format error: qmail-queue's exit code 91.
var ErrBadEnvelope = errors.New("qmail: envelope format error")

// ReadEnvelope reads an envelope in qmail-queue(8) format: F, the sender, NUL, then for
// each recipient T, the address, NUL, and a final NUL. An empty envelope (what qmail-smtpd
// sends when DATABYTES is exceeded), a missing part or trailing bytes are errors wrapping
// [ErrBadEnvelope]; read faults are returned as they are.
func ReadEnvelope(r io.Reader, max int) (Envelope, error) {
	raw, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return Envelope{}, fmt.Errorf("qmail: reading envelope: %w", err)
	}
	if len(raw) > max {
		return Envelope{}, fmt.Errorf("%w: longer than %d bytes", ErrBadEnvelope, max)
	}
	return ParseEnvelope(raw)
}

// ParseEnvelope parses raw, an envelope in qmail-queue(8) format; see [ReadEnvelope].
func ParseEnvelope(raw []byte) (Envelope, error) {
	if len(raw) == 0 {
		return Envelope{}, fmt.Errorf("%w: empty", ErrBadEnvelope)
	}
	if raw[0] != 'F' {
		return Envelope{}, fmt.Errorf("%w: does not start with F", ErrBadEnvelope)
	}
	rest := raw[1:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return Envelope{}, fmt.Errorf("%w: sender not terminated", ErrBadEnvelope)
	}
	env := Envelope{Sender: string(rest[:i]), Raw: raw}
	rest = rest[i+1:]
	for {
		if len(rest) == 0 {
			return Envelope{}, fmt.Errorf("%w: missing final NUL", ErrBadEnvelope)
		}
		if rest[0] == 0 {
			if len(rest) > 1 {
				return Envelope{}, fmt.Errorf("%w: bytes after the final NUL", ErrBadEnvelope)
			}
			break
		}
		if rest[0] != 'T' {
			return Envelope{}, fmt.Errorf("%w: recipient does not start with T", ErrBadEnvelope)
		}
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return Envelope{}, fmt.Errorf("%w: recipient not terminated", ErrBadEnvelope)
		}
		env.Recipients = append(env.Recipients, string(rest[1:i]))
		rest = rest[i+1:]
	}
	if len(env.Recipients) == 0 {
		return Envelope{}, fmt.Errorf("%w: no recipient", ErrBadEnvelope)
	}
	return env, nil
}

// EnvelopeFromEnv builds the envelope qmail-qfilter describes in the environment:
// QMAILUSER@QMAILHOST (both empty for <>; QMAILHOST empty for an unqualified sender) and
// QMAILRCPTS, one recipient per line. ok is false when QMAILUSER is not set at all.
func EnvelopeFromEnv(getenv func(string) (string, bool)) (env Envelope, ok bool) {
	user, ok := getenv("QMAILUSER")
	if !ok {
		return Envelope{}, false
	}
	host, _ := getenv("QMAILHOST")
	switch {
	case user == "" && host == "":
		env.Sender = ""
	case host == "":
		env.Sender = user
	default:
		env.Sender = user + "@" + host
	}
	rcpts, _ := getenv("QMAILRCPTS")
	sc := bufio.NewScanner(strings.NewReader(rcpts))
	sc.Buffer(nil, MaxEnvelope)
	for sc.Scan() {
		if r := sc.Text(); r != "" {
			env.Recipients = append(env.Recipients, r)
		}
	}
	return env, true
}
