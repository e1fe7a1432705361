package address

import "testing"

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in   string
		want Address
	}{
		{"user@Host.Example", Address{"user", "Host.Example"}},
		{"<user@host.example>", Address{"user", "host.example"}},
		{"  < user@host.example >  ", Address{"user", "host.example"}},
		{`"a@b"@Host.Example`, Address{"a@b", "Host.Example"}},
		{`"a\"b\\c"@h.example`, Address{`a"b\c`, "h.example"}},
		{"ceo", Address{"ceo", ""}},
		{"@host.example", Address{"", "host.example"}},
		{"#@[]", Address{"#", "[]"}},
	}
	for _, tt := range tests {
		got, err := ParseAddr(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseAddr(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "  ", "<>", "< >"} {
		if got, err := ParseAddr(in); err != ErrEmpty {
			t.Errorf("ParseAddr(%q) = %#v, %v; want ErrEmpty", in, got, err)
		}
	}
}

func TestCanonicalDomain(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Acme-Corp.Example", "acme-corp.example"},
		{"hq.acme-corp.example.", "hq.acme-corp.example"},
		{"acmé-corp.example", "xn--acm-corp-d1a.example"},
		{"ACMÉ-CORP.EXAMPLE", "xn--acm-corp-d1a.example"},
		{"XN--ACM-CORP-D1A.EXAMPLE", "xn--acm-corp-d1a.example"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"acmè-corp.example", "xn--acm-corp-30a.example"},
		{"ａｃｍｅ-corp.example", "acme-corp.example"}, // full-width letters resolve to ASCII
		{"under_score.example", "under_score.example"},
		{"[192.0.2.1]", "[192.0.2.1]"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := CanonicalDomain(tt.in); got != tt.want {
			t.Errorf("CanonicalDomain(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		in   Address
		want string
	}{
		{Address{"Phisher", "Scam.Example"}, "phisher@scam.example"},
		{Address{"CEO", ""}, "ceo"},
		{Address{"Ünïcode", "bücher.example."}, "ünïcode@xn--bcher-kva.example"},
		{Address{"a@b", "h.example"}, "a@b@h.example"},
	}
	for _, tt := range tests {
		if got := tt.in.Canonical(); got != tt.want {
			t.Errorf("%#v.Canonical() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzCanonicalDomain checks that the canonical form is stable: rules are compiled once and
// candidates canonicalised per message, so CanonicalDomain(CanonicalDomain(d)) must be
// CanonicalDomain(d), or a rule could miss the very domain it names.
func FuzzCanonicalDomain(f *testing.F) {
	for _, d := range []string{"рӀ", "Acme-Corp.Example.", "bücher.example", "XN--ACM-CORP-D1A.EXAMPLE", "ａｃｍｅ.example", "a_b.example", "[1.2.3.4]", "ß.example", "İ.example"} {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, d string) {
		c := CanonicalDomain(d)
		if again := CanonicalDomain(c); again != c {
			t.Fatalf("CanonicalDomain(%q) = %q, but CanonicalDomain(%q) = %q", d, c, c, again)
		}
	})
}
