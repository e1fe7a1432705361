package qmail

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseEnvelope(t *testing.T) {
	good := []struct {
		name  string
		raw   string
		want  string
		rcpts []string
	}{
		{"one recipient", "Fbob@partner.example\x00Trcpt@internal.example\x00\x00", "bob@partner.example", []string{"rcpt@internal.example"}},
		{"two recipients", "Fbob@partner.example\x00Ta@x.example\x00Tb@y.example\x00\x00", "bob@partner.example", []string{"a@x.example", "b@y.example"}},
		{"null sender", "F\x00Tpostmaster@x.example\x00\x00", "", []string{"postmaster@x.example"}},
		{"quoted local part", "F\"a@b\"@Host.Example\x00Tr@x\x00\x00", `"a@b"@Host.Example`, []string{"r@x"}},
		{"unqualified sender", "Fceo\x00Tr@x\x00\x00", "ceo", []string{"r@x"}},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			env, err := ParseEnvelope([]byte(tt.raw))
			if err != nil {
				t.Fatalf("ParseEnvelope(%q): %v", tt.raw, err)
			}
			if env.Sender != tt.want || !reflect.DeepEqual(env.Recipients, tt.rcpts) || string(env.Raw) != tt.raw {
				t.Errorf("ParseEnvelope(%q) = %q %q %q, want %q %q", tt.raw, env.Sender, env.Recipients, env.Raw, tt.want, tt.rcpts)
			}
		})
	}
	bad := []struct{ name, raw, msg string }{
		{"empty (DATABYTES exceeded)", "", "empty"},
		{"no F", "bob@x\x00Tr@x\x00\x00", "does not start with F"},
		{"T first", "Tr@x\x00\x00", "does not start with F"},
		{"sender not terminated", "Fbob@x", "sender not terminated"},
		{"no final NUL", "Fbob@x\x00Tr@x\x00", "missing final NUL"},
		{"recipient not terminated", "Fbob@x\x00Tr@x", "recipient not terminated"},
		{"no recipient", "Fbob@x\x00\x00", "no recipient"},
		{"junk recipient", "Fbob@x\x00Xr@x\x00\x00", "recipient does not start with T"},
		{"bytes after the end", "Fbob@x\x00Tr@x\x00\x00Tz@y\x00\x00", "bytes after the final NUL"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEnvelope([]byte(tt.raw))
			if !errors.Is(err, ErrBadEnvelope) || !strings.HasSuffix(err.Error(), tt.msg) {
				t.Errorf("ParseEnvelope(%q) = %v, want ErrBadEnvelope: %s", tt.raw, err, tt.msg)
			}
		})
	}
}

func TestReadEnvelope(t *testing.T) {
	raw := "Fbob@x\x00Tr@x\x00\x00"
	env, err := ReadEnvelope(iotest.OneByteReader(strings.NewReader(raw)), 100)
	if err != nil || env.Sender != "bob@x" {
		t.Fatalf("ReadEnvelope = %+v, %v", env, err)
	}
	if _, err := ReadEnvelope(strings.NewReader(raw), len(raw)-1); !errors.Is(err, ErrBadEnvelope) {
		t.Errorf("ReadEnvelope over the limit = %v, want ErrBadEnvelope", err)
	}
	readErr := errors.New("boom")
	if _, err := ReadEnvelope(iotest.ErrReader(readErr), 100); !errors.Is(err, readErr) || errors.Is(err, ErrBadEnvelope) {
		t.Errorf("ReadEnvelope on a read error = %v, want the read error", err)
	}
}

func TestEnvelopeFromEnv(t *testing.T) {
	tests := []struct {
		name   string
		vars   map[string]string
		ok     bool
		sender string
		rcpts  []string
	}{
		{"qualified", map[string]string{"QMAILUSER": "bob", "QMAILHOST": "Partner.Example", "QMAILRCPTS": "a@x\nb@y\n"}, true, "bob@Partner.Example", []string{"a@x", "b@y"}},
		{"null sender", map[string]string{"QMAILUSER": "", "QMAILHOST": "", "QMAILRCPTS": "a@x\n"}, true, "", []string{"a@x"}},
		{"unqualified", map[string]string{"QMAILUSER": "ceo", "QMAILHOST": "", "QMAILRCPTS": "a@x\n"}, true, "ceo", []string{"a@x"}},
		{"quoted local part", map[string]string{"QMAILUSER": `"a@b"`, "QMAILHOST": "h.example", "QMAILRCPTS": "a@x\n"}, true, `"a@b"@h.example`, []string{"a@x"}},
		{"not under qmail-qfilter", map[string]string{"QMAILRCPTS": "a@x\n"}, false, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, ok := EnvelopeFromEnv(func(k string) (string, bool) { v, ok := tt.vars[k]; return v, ok })
			if ok != tt.ok || env.Sender != tt.sender || !reflect.DeepEqual(env.Recipients, tt.rcpts) {
				t.Errorf("EnvelopeFromEnv = %q %q %v, want %q %q %v", env.Sender, env.Recipients, ok, tt.sender, tt.rcpts, tt.ok)
			}
		})
	}
}

func TestTemporary(t *testing.T) {
	for code, want := range map[int]bool{0: false, 11: false, 31: false, 40: false, 99: false, 82: false,
		52: true, 53: true, 54: true, 55: true, 81: true, 91: true, 1: true, 41: true} {
		if got := Temporary(code); got != want {
			t.Errorf("Temporary(%d) = %v, want %v", code, got, want)
		}
	}
}
