package qmail

import (
	"strings"
	"testing"
)

func TestCustomErrorText(t *testing.T) {
	long := strings.Repeat("0123456789", 30) // 300 characters
	tests := []struct{ name, in, want string }{
		{"ASCII", "forged sender: ours.example used from outside", "Dforged sender: ours.example used from outside (#5.7.1)"},
		{"empty", "", "D (#5.7.1)"},
		{"line ends, tab, NUL and DEL are spaces", "two\r\nlines\tand\x00nul\x7f", "Dtwo  lines and nul  (#5.7.1)"},
		{"diacritics", "Unsere Domäne wird nie von außen verwendet", "DUnsere Domane wird nie von au?en verwendet (#5.7.1)"},
		{"decomposed diacritics", "Dome\u0301ne", "DDomene (#5.7.1)"},
		{"French and Czech", "Ça doit être vérifié, Žluťoučký kůň", "DCa doit etre verifie, Zlutoucky kun (#5.7.1)"},
		{"compatibility forms", "ﬁle … ＡＢＣ ½\u00a0x", "Dfile ... ABC ? x (#5.7.1)"},
		{"no ASCII form", "€ 日本 Ω ß ø Ł", "D? ?? ? ? ? ? (#5.7.1)"},
		{"a combining mark alone", "\u0301x\u0301", "Dx (#5.7.1)"},
		{"C1 control and invisible", "a\u0085b\u200bc", "Da?b?c (#5.7.1)"},
		{"bytes that are not UTF-8", "caf\xe9 \xff\xfe", "Dcaf? ?? (#5.7.1)"},
		{"a status code already in the reason stays", "bad (#5.7.1)", "Dbad (#5.7.1) (#5.7.1)"},
		{"245 bytes: all of it", long[:245], "D" + long[:245] + " (#5.7.1)"},
		{"300 characters: cut, the status code kept", long, "D" + long[:245] + " (#5.7.1)"},
		{"cut inside an expansion", strings.Repeat("x", 244) + "…", "D" + strings.Repeat("x", 244) + ". (#5.7.1)"},
		{"long non-ASCII", strings.Repeat("ä", 300), "D" + strings.Repeat("a", 245) + " (#5.7.1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(CustomErrorText(tt.in))
			if got != tt.want {
				t.Errorf("CustomErrorText(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if len(got) > MaxCustomErrorText {
				t.Errorf("%d bytes, over %d", len(got), MaxCustomErrorText)
			}
			for i := 0; i < len(got); i++ {
				if got[i] < 0x20 || got[i] > 0x7e {
					t.Errorf("byte %#x at %d is not printable ASCII", got[i], i)
				}
			}
		})
	}
}

// FuzzCustomErrorText: whatever the reason, the text is "D", printable ASCII and the status
// code, in at most 255 bytes.
func FuzzCustomErrorText(f *testing.F) {
	for _, s := range []string{"", "forged", "Domäne", "\xff\x00\r\n", strings.Repeat("ﷺ", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reason string) {
		got := CustomErrorText(reason)
		if len(got) > MaxCustomErrorText || got[0] != 'D' || !strings.HasSuffix(string(got), CustomErrorStatus) {
			t.Fatalf("CustomErrorText(%q) = %q", reason, got)
		}
		for _, c := range got {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("CustomErrorText(%q) = %q: byte %#x", reason, got, c)
			}
		}
	})
}
