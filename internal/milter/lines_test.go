package milter

import (
	"strings"
	"testing"
)

func TestNoEmptyLines(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{" plain value", " plain value"},
		{" folded\r\n\tvalue", " folded\r\n\tvalue"},
		{" folded\n value", " folded\n value"},
		{" bare\rcr", " bare\rcr"},
		{" a\r\n", " a"},
		{" a\n\n", " a"},
		{" a\r\r\n", " a"},
		{" a\n\nFrom: x", " a\nFrom: x"},
		{" a\r\n\r\nFrom: x", " a\nFrom: x"},
		{" a\n\r\n\n\rb", " a\nb"},
		{" a\n \n b", " a\n \n b"}, // a line of white space is a continuation, not empty
		{"\r\n\r\n", ""},
	} {
		if got := noEmptyLines(tc.in); got != tc.want {
			t.Errorf("noEmptyLines(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzNoEmptyLines: the result has no empty line and no trailing line break, keeps every
// other byte in order, and is its own result.
func FuzzNoEmptyLines(f *testing.F) {
	for _, s := range []string{" a\n\nFrom: x", " a\r\n\tb", "\r\r\n\n", " a\rb\r\n"} {
		f.Add(s)
	}
	isBreak := func(c byte) bool { return c == '\r' || c == '\n' }
	f.Fuzz(func(t *testing.T, in string) {
		out := noEmptyLines(in)
		if out != "" && isBreak(out[len(out)-1]) {
			t.Fatalf("%q -> %q ends with a line break", in, out)
		}
		for i := 0; i+1 < len(out); i++ {
			if isBreak(out[i]) && isBreak(out[i+1]) && !(out[i] == '\r' && out[i+1] == '\n' && (i+2 == len(out) || !isBreak(out[i+2]))) {
				t.Fatalf("%q -> %q holds an empty line at %d", in, out, i)
			}
		}
		strip := func(s string) string { return strings.NewReplacer("\r", "", "\n", "").Replace(s) }
		if strip(out) != strip(in) {
			t.Fatalf("%q -> %q lost or changed bytes", in, out)
		}
		if again := noEmptyLines(out); again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}
	})
}
