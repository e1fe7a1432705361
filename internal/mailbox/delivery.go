package mailbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// MaxDeliveryField is the most of a Return-Path, Delivered-To or X-Original-To value that
// [Delivery] holds; a longer Return-Path is an error, a longer recipient is ignored.
const MaxDeliveryField = 4096

// Delivery reads, as a message passes through it, the envelope that the delivery agent
// recorded at the top of the header when it stored the message:
//
//   - the sender from the first Return-Path field (the last delivery's: each delivery
//     agent, qmail-local, Postfix's local and virtual, adds its own above what is there);
//   - the recipient from the first Delivered-To or X-Original-To field, whichever comes
//     first (qmail writes Delivered-To; Postfix writes X-Original-To, the address before
//     alias expansion, above its Delivered-To).
//
// It passes every byte through unchanged and holds only those values, each up to
// [MaxDeliveryField]. Field names are matched without regard to case, with blanks allowed
// before the colon; a value may be folded. The header ends at the first empty line.
type Delivery struct {
	r    io.Reader
	done bool // the header has ended, or both values are known

	st    dstate
	name  [16]byte // the start of the current line's field name, lower-cased
	nlen  int
	field dfield // the field being held
	val   []byte
	long  bool // val was cut at MaxDeliveryField

	sender, rcpt         []byte
	haveSender, haveRcpt bool
	senderLong           bool
	rcptField            string
}

type dstate uint8

const (
	dLineStart dstate = iota // at the start of a line
	dLineCR                  // a CR at the start of a line: CRLF ends the header
	dName                    // in a field name
	dValue                   // in the value of a held field
	dSkip                    // in a line that is not held
)

type dfield uint8

const (
	fNone dfield = iota
	fReturnPath
	fDeliveredTo
	fOriginalTo
)

// NewDelivery reads the message from r.
func NewDelivery(r io.Reader) *Delivery {
	d := &Delivery{}
	d.Reset(r)
	return d
}

// Reset starts over with the message in r, keeping the buffers.
func (d *Delivery) Reset(r io.Reader) {
	*d = Delivery{r: r, val: d.val[:0], sender: d.sender[:0], rcpt: d.rcpt[:0]}
}

// Read reads from the message.
func (d *Delivery) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if !d.done {
		d.scan(p[:n])
		if err == io.EOF {
			d.end() // a message that is all header
		}
	}
	return n, err
}

// ErrReturnPath is the error of a Return-Path that holds no address.
var ErrReturnPath = errors.New("mailbox: Return-Path is not <address>")

// Sender returns the envelope sender of the first Return-Path field: "" for <> (the null
// sender); found is false when the header has none. Its value must be an address in angle
// brackets, or a bare address without blanks; anything else is an error that wraps
// [ErrReturnPath].
func (d *Delivery) Sender() (sender string, found bool, err error) {
	if !d.haveSender {
		return "", false, nil
	}
	if d.senderLong {
		return "", true, fmt.Errorf("%w: longer than %d bytes", ErrReturnPath, MaxDeliveryField)
	}
	v := trimBlanks(d.sender)
	if len(v) >= 2 && v[0] == '<' && v[len(v)-1] == '>' {
		return string(trimBlanks(v[1 : len(v)-1])), true, nil
	}
	if len(v) > 0 && bytes.IndexAny(v, " \t<>") < 0 {
		return string(v), true, nil
	}
	return "", true, fmt.Errorf("%w: %s", ErrReturnPath, strconv.Quote(string(v)))
}

// Recipient returns the recipient of the first Delivered-To or X-Original-To field, with
// angle brackets removed, and the field's name; found is false when there is none (or its
// value was empty or too long).
func (d *Delivery) Recipient() (rcpt, field string, found bool) {
	if !d.haveRcpt {
		return "", "", false
	}
	v := trimBlanks(d.rcpt)
	if len(v) >= 2 && v[0] == '<' && v[len(v)-1] == '>' {
		v = trimBlanks(v[1 : len(v)-1])
	}
	if len(v) == 0 {
		return "", "", false
	}
	return string(v), d.rcptField, true
}

func (d *Delivery) scan(p []byte) {
	for i := 0; i < len(p) && !d.done; i++ {
		b := p[i]
		switch d.st {
		case dLineStart, dLineCR:
			switch {
			case b == '\n' || d.st == dLineCR && b == '\r':
				if b == '\n' {
					d.end()
				}
			case b == '\r':
				d.st = dLineCR
			case d.st == dLineCR:
				d.finish()
				d.st = dSkip // a line that starts with a bare CR is no field
			case b == ' ' || b == '\t':
				if d.field != fNone {
					d.st = dValue // a continuation: the fold is removed, the blank kept
					d.hold(b)
				} else {
					d.st = dSkip
				}
			default:
				d.finish()
				d.st, d.nlen = dName, 0
				d.nameByte(b)
			}
		case dName:
			switch b {
			case ':':
				d.field = d.wanted()
				if d.field == fNone {
					d.st = dSkip
				} else {
					d.st, d.val, d.long = dValue, d.val[:0], false
				}
			case '\n':
				d.st = dLineStart
			default:
				d.nameByte(b)
			}
		case dValue:
			if b == '\n' {
				if n := len(d.val); n > 0 && d.val[n-1] == '\r' {
					d.val = d.val[:n-1]
				}
				d.st = dLineStart
			} else {
				d.hold(b)
			}
		case dSkip:
			if b == '\n' {
				d.st = dLineStart
			}
		}
	}
}

// nameByte adds b to the field name, lower-cased; a name longer than the buffer matches
// nothing.
func (d *Delivery) nameByte(b byte) {
	if 'A' <= b && b <= 'Z' {
		b += 'a' - 'A'
	}
	if d.nlen < len(d.name) {
		d.name[d.nlen] = b
	}
	d.nlen++
}

// wanted is the field the name just read stands for, if its value is still unknown.
func (d *Delivery) wanted() dfield {
	if d.nlen > len(d.name) {
		return fNone
	}
	switch string(trimBlanks(d.name[:d.nlen])) {
	case "return-path":
		if !d.haveSender {
			return fReturnPath
		}
	case "delivered-to":
		if !d.haveRcpt {
			return fDeliveredTo
		}
	case "x-original-to":
		if !d.haveRcpt {
			return fOriginalTo
		}
	}
	return fNone
}

func (d *Delivery) hold(b byte) {
	if len(d.val) < MaxDeliveryField {
		d.val = append(d.val, b)
	} else {
		d.long = true
	}
}

// finish records the held field, now that its last line has passed.
func (d *Delivery) finish() {
	switch d.field {
	case fReturnPath:
		d.sender, d.haveSender, d.senderLong = append(d.sender[:0], d.val...), true, d.long
	case fDeliveredTo, fOriginalTo:
		if !d.long {
			d.rcpt, d.haveRcpt = append(d.rcpt[:0], d.val...), true
			d.rcptField = "Delivered-To"
			if d.field == fOriginalTo {
				d.rcptField = "X-Original-To"
			}
		}
	}
	d.field = fNone
	if d.haveSender && d.haveRcpt {
		d.done = true
	}
}

// end is the end of the header.
func (d *Delivery) end() {
	d.finish()
	d.done = true
}

func trimBlanks(b []byte) []byte {
	return bytes.Trim(b, " \t")
}
