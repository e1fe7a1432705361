package header

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func TestSenderName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		all   bool
		canon string
		ok    bool
	}{
		{"From", false, "From", true},
		{"from", false, "From", true},
		{"FROM", true, "From", true},
		{"From \t", false, "From", true},
		{" \tFrom", false, "From", true},
		{"Fr\x00om", false, "From", true},
		{"F\x01r\x7fom\x00", false, "From", true},
		{"From\r\n\t", false, "From", true},
		{"Sender", true, "Sender", true},
		{"sEnDeR", false, "", false},
		{"Resent-From", true, "Resent-From", true},
		{"resent-from ", false, "", false},
		{"Reply-To", true, "", false},
		{"Fro m", true, "", false},
		{"From:", true, "", false},
		{"From-X", true, "", false},
		{"Resent-From-X", true, "", false},
		{"XFrom", true, "", false},
		{"Fröm", true, "", false},
		{"", true, "", false},
		{"\x00", true, "", false},
		// CR and LF: dropped by some readers, a line end for others.
		{"Fr\rom", false, "From", true},
		{"From\r", false, "From", true},
		{"X-Y\rFrom", false, "From", true},
		{"X-Y\nFrom ", false, "From", true},
		{"From\rX", false, "", false},
		{"Message-ID", true, "", false},
		{"Content-Type", true, "", false},
	} {
		canon, _, ok := senderName([]byte(tc.name), tc.all)
		if !ok {
			canon = ""
		}
		if canon != tc.canon || ok != tc.ok {
			t.Errorf("senderName(%q, %v) = %q, %v, want %q, %v", tc.name, tc.all, canon, ok, tc.canon, tc.ok)
		}
	}
}

func TestUnfold(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"a@b", "a@b"},
		{"a\r\n b", "a b"},
		{"a\n\tb", "a\tb"},
		{"a\r\tb", "a\tb"},
		{"a\r\n\r\n b", "a\r\n b"},
		{"a\r\r\n\tb", "a\r\tb"},
		{"a\rb", "a\rb"},
		{"a\nb", "a\nb"},
		{"a\r\nb", "a\r\nb"},
		{"a\r\n", "a\r\n"},
		{"\r\n \r\n\t<x>", " \t<x>"},
		{"x\x00\r\n y\x7f", "x\x00 y\x7f"},
	} {
		dst := []byte("pre:")
		if got := unfold(dst, []byte(tc.in)); string(got) != "pre:"+tc.want {
			t.Errorf("unfold(%q) = %q, want %q", tc.in, got[4:], tc.want)
		}
	}
}

func TestReadings(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		all         bool
		want        []got
	}{
		{"From", " a@ours", false, []got{from("a@ours")}},
		{"from ", "\r\n \"A,\r\n B\" <x@ours>\r\n", false, []got{from("\"A, B\" <x@ours>")}},
		{"Reply-To", " a@ours", true, nil},
		{"Received", " from x\r\n\tby y\rFrom: payroll@hq.ours", false, []got{from("payroll@hq.ours")}},
		{"Received", " x\rSender: s@ours\rFrom: f@ours", false, []got{from("f@ours")}},
		{"Received", " x\rSender: s@ours\rFrom: f@ours", true, []got{sender("s@ours"), from("f@ours")}},
		{"From", " a@ext\rFrom: noc@ours", false, []got{from("a@ext\rFrom: noc@ours"), from("a@ext"), from("noc@ours")}},
		{"Subject", " a\r\tFrom: b@ours", false, nil},
		{"Subject", " a\rFr\x00om \t: b@ours", false, []got{from("b@ours")}},
		{"Subject", " a\rFrom x: b@ours", false, nil},
		{"Subject", " a\r\rFrom:b", false, nil}, // CR CR: the empty line that ends a CR reader's header
		{"Subject", " a\rFrom: b\r\n c", false, []got{from("b c")}},
		{"X\rFrom", " a@ours", false, []got{from("a@ours")}},
		{"Fr\rom", " a@ours\rb", false, []got{from("a@ours\rb"), from("a@ours")}},
	} {
		var fields []got
		err := Readings([]byte(tc.name), []byte(tc.value), Options{AllSenderFields: tc.all}, func(f Reading) error {
			fields = append(fields, got{f.Name, string(f.Value)})
			return nil
		})
		if err != nil || !reflect.DeepEqual(fields, tc.want) {
			t.Errorf("Readings(%q, %q, %v) = %v, %v; want %v", tc.name, tc.value, tc.all, fields, err, tc.want)
		}
	}
	stop := errors.New("stop")
	if err := Readings([]byte("X"), []byte("\rFrom: a\rFrom: b"), Options{}, func(Reading) error { return stop }); err != stop {
		t.Errorf("Readings error = %v, want %v", err, stop)
	}
}

// fragments are the pieces random messages are made of: every byte and token the
// scanner treats specially.
var fragments = []string{
	"From", "from", "FROM", "Sender", "Resent-From", "Reply-To", "Received", "X", ">From ",
	":", ": ", " ", "\t", "\r", "\n", "\r\n", "\r\r\n", "\n\n", "\x00", "\x01", "\x7f", "\xff",
	"a@ours", "<b@ext>", "\"q\"", "x",
}

func randomMessage(rng *rand.Rand) []byte {
	var b bytes.Buffer
	for range rng.IntN(40) {
		b.WriteString(fragments[rng.IntN(len(fragments))])
	}
	return b.Bytes()
}

// TestChunkingProperty checks that the fields reported do not depend on how the input
// is split into reads, on random messages built from the tricky fragments.
func TestChunkingProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		msg := randomMessage(rng)
		opt := Options{AllSenderFields: i%2 == 0}
		var first result
		for j, sp := range splits() {
			res := run(msg, opt, sp.wrap)
			if res.err != nil {
				t.Fatalf("%q %s: %v", msg, sp.name, res.err)
			}
			checkCopy(t, msg, res)
			if j == 0 {
				first = res
			} else if !reflect.DeepEqual(res.fields, first.fields) {
				t.Fatalf("%q: %s read gives\n%s whole read gives\n%s", msg, sp.name, formatFields(res.fields), formatFields(first.fields))
			}
		}
	}
}

// TestReadingsMatchScan checks that the milter's Readings reads one field as Scan
// reads the same field in a stream. (A line that is not a proper field, which a milter
// never receives, is left out: Scan may read an indented line after it as a field.)
func TestReadingsMatchScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"From", "from \t", "Fr\x00om", "Sender", "Resent-From", "Received", "Subject"}
	for i := range 5000 {
		name := names[rng.IntN(len(names))]
		value := randomMessage(rng)
		all := i%2 == 0
		if d := diffReadings([]byte(name), value, all); d != "" {
			t.Fatalf("field %q value %q all=%v: %s", name, value, all, d)
		}
	}
}

// diffReadings compares Scan of "name:value\n" with Readings(name, value), for a value
// Scan reads as one field: every LF followed by a blank, and no CR or LF at its end.
// It returns "" when they agree or the value does not qualify.
func diffReadings(name, value []byte, all bool) string {
	for i, c := range value {
		if c == '\n' && (i+1 == len(value) || (value[i+1] != ' ' && value[i+1] != '\t')) {
			return ""
		}
	}
	if len(value) > 0 && (value[len(value)-1] == '\r' || value[len(value)-1] == '\n') {
		return ""
	}
	if bytes.ContainsAny(name, ":\r\n") {
		return ""
	}
	msg := append(append(append(bytes.Clone(name), ':'), value...), '\n')
	res := run(msg, Options{AllSenderFields: all}, splits()[0].wrap)
	var fields []got
	err := Readings(name, value, Options{AllSenderFields: all}, func(f Reading) error {
		fields = append(fields, got{f.Name, string(f.Value)})
		return nil
	})
	if res.err != nil || err != nil {
		return fmt.Sprintf("errors: Scan %v, Readings %v", res.err, err)
	}
	if bytes.IndexByte(name, 0) >= 0 || bytes.IndexByte(value, 0) >= 0 {
		// Scan also reads the field as mutt does, glued on at a NUL (see joiner): a milter
		// never needs that reading, since Postfix cuts a header line at a NUL. What
		// Readings reports, Scan reports as well.
		left := slices.Clone(res.fields)
		for _, f := range fields {
			i := slices.Index(left, f)
			if i < 0 {
				return "Readings has a field Scan lacks:\nScan:\n" + formatFields(res.fields) + "Readings:\n" + formatFields(fields)
			}
			left = slices.Delete(left, i, i+1)
		}
		return ""
	}
	if !reflect.DeepEqual(res.fields, fields) {
		return "Scan:\n" + formatFields(res.fields) + "Readings:\n" + formatFields(fields)
	}
	return ""
}
