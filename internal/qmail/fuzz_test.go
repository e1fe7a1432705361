package qmail

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseEnvelope checks that any input is either a bad envelope or one that encodes
// back to exactly the same bytes.
func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{
		"", "F\x00\x00", "Fbob@x\x00Tr@x\x00\x00", "F\x00Ta@b\x00Tc@d\x00\x00", "Fbob@x\x00Tr@x\x00",
		"Fbob@x\x00Tr@x\x00\x00\x00", "T\x00\x00", "F\"a@b\"@h\x00T\x00\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		env, err := ParseEnvelope(raw)
		if err != nil {
			if !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("ParseEnvelope(%q) = %v, not ErrBadEnvelope", raw, err)
			}
			return
		}
		var b bytes.Buffer
		b.WriteString("F" + env.Sender + "\x00")
		for _, r := range env.Recipients {
			b.WriteString("T" + r + "\x00")
		}
		b.WriteByte(0)
		if !bytes.Equal(b.Bytes(), raw) {
			t.Fatalf("ParseEnvelope(%q) = %q %q, which encodes as %q", raw, env.Sender, env.Recipients, b.Bytes())
		}
	})
}
