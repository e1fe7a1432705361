package address

import (
	"bytes"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCandidates checks, for any value:
//   - no panic, and a number of candidates bounded by the size of the value;
//   - CandidatesIn with declared charsets finds every candidate Candidates finds;
//   - every address net/mail.ParseAddressList finds is a candidate (net/mail as the oracle);
//   - every candidate is found again when white space between tokens is widened and a
//     space is put around each comma (as after unfolding a folded field), and when the
//     ASCII letters change case (for values without encoded words).
func FuzzCandidates(f *testing.F) {
	for _, tt := range candidateTests {
		f.Add([]byte(tt.value))
	}
	if data, err := os.ReadFile(corpusFile); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			parts := strings.SplitN(line, "\t", 3)
			if len(parts) != 3 || len(parts[2]) > 4096 {
				continue
			}
			if v, err := strconv.Unquote(parts[2]); err == nil {
				f.Add([]byte(v))
			}
		}
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		orig := bytes.Clone(value)
		got := Candidates(nil, value)
		if !bytes.Equal(value, orig) {
			t.Fatalf("Candidates modified its input %q to %q", orig, value)
		}
		decodings := 1 // raw 8-bit bytes are read in each fallback charset too
		if !utf8.Valid(value) {
			decodings += len(FallbackCharsets)
		}
		if bound := decodings * (4*len(value) + 4); len(got) > bound {
			t.Fatalf("Candidates(%q): %d candidates, more than %d", value, len(got), bound)
		}
		// The charsets a message declares only add readings.
		in, _ := CandidatesIn(nil, value, []string{"koi8-r", "utf-16"})
		for _, a := range got {
			if !slices.Contains(in, a) {
				t.Fatalf("CandidatesIn(%q) = %q lacks %q of Candidates", value, in, a)
			}
		}
		have := candidateSet(got)

		if list, err := mail.ParseAddressList(string(value)); err == nil {
			for _, a := range list {
				if !have[asciiLower(a.Address)] {
					t.Errorf("net/mail finds %q in %q; candidates %q", a.Address, value, got)
				}
			}
		}

		// Is there an encoded word in any reading? Its B text is case-sensitive, and
		// blanks inside one are its text (lenient decoders read them): widening them
		// changes what it says.
		encoded := hasEncodedWord(value) || hasEncodedWord(appendStripped(nil, value))
		// Right-to-left text is also read in visual order, where a tab (a segment
		// separator) reorders what is around it: no widening there either.
		// Raw 8-bit bytes are also read in the fallback charsets, where what a byte next
		// to white space or a letter is depends on its neighbours: no widening or case
		// change there.
		legacy := !utf8.Valid(value)
		if !encoded && !legacy && features(value)&fBidi == 0 {
			folded := widen(value, true)
			haveFolded := candidateSet(Candidates(nil, folded))
			for _, a := range got {
				s := candidateKey(a)
				if strings.ContainsAny(s, " \t,") {
					continue // white space or a comma inside a quoted string or literal changes
				}
				if !haveFolded[s] {
					t.Errorf("%q: candidate %q lost after widening to %q", value, s, folded)
				}
			}
		}

		if !encoded && !legacy {
			upper := asciiUpper(bytes.Clone(value))
			haveUpper := candidateSet(Candidates(nil, upper))
			for s := range have {
				if !haveUpper[s] {
					t.Errorf("%q: candidate %q lost in upper case %q", value, s, upper)
				}
			}
		}
	})
}

func candidateSet(as []Address) map[string]bool {
	m := make(map[string]bool, len(as))
	for _, a := range as {
		m[candidateKey(a)] = true
	}
	return m
}

// candidateKey is the address as net/mail writes it (an unquoted local part), ASCII
// lower-cased.
func candidateKey(a Address) string {
	if a.Domain == "" {
		return asciiLower(a.Local)
	}
	return asciiLower(a.Local + "@" + a.Domain)
}

// widen adds white space to every run of blanks, and around every comma if commas.
func widen(v []byte, commas bool) []byte {
	var out []byte
	for i, c := range v {
		switch {
		case c == ',' && commas:
			out = append(out, " , "...)
		case c == ' ' || c == '\t':
			out = append(out, c)
			if i+1 == len(v) || v[i+1] != ' ' && v[i+1] != '\t' {
				out = append(out, " \t "...)
			}
		default:
			out = append(out, c)
		}
	}
	return out
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func asciiUpper(b []byte) []byte {
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return b
}
