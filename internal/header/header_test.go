package header

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// scanCase is one message with the exact fields Scan must report.
type scanCase struct {
	name string
	in   string
	all  bool  // Options.AllSenderFields
	want []got // fields, in order
	head int   // the header section's length, if not what headerEnd says
}

func from(v string) got   { return got{"From", v} }
func sender(v string) got { return got{"Sender", v} }
func resent(v string) got { return got{"Resent-From", v} }

var scanCases = []scanCase{
	// Framing.
	{name: "empty input", in: ""},
	{name: "single LF", in: "\n"},
	{name: "single CRLF", in: "\r\n"},
	{name: "empty first line then From", in: "\nFrom: a@ours\n"},
	{name: "plain LF", in: "Subject: hi\nFrom: a@ours\nTo: b@x\n\nbody\n", want: []got{from("a@ours")}},
	{name: "plain CRLF", in: "Subject: hi\r\nFrom: a@ours\r\n\r\nbody\r\n", want: []got{from("a@ours")}},
	{name: "LF CRLF ends header", in: "From: a@ours\n\r\nFrom: b@ours\n", want: []got{from("a@ours")}},
	{name: "CRLF LF ends header", in: "From: a@ours\r\n\nFrom: b@ours\n", want: []got{from("a@ours")}},
	{name: "header only no empty line", in: "Subject: s\r\nFrom: a@ours\r\n", want: []got{from("a@ours")}},
	{name: "no final line end", in: "Subject: s\r\nFrom: <noc@ours>", want: []got{from("<noc@ours>")}},
	{name: "no final line end after bare CR", in: "From: a@ours\r", want: []got{from("a@ours")}},
	{name: "empty From value", in: "From:\nTo: x\n\n", want: []got{from("")}},
	{name: "body From not read", in: "From: a@ext\n\nFrom: ceo@ours\n", want: []got{from("a@ext")}},
	{name: "body binary after empty line", in: "From: a@ext\n\n\x00\r\rFrom: x@ours\r\n", want: []got{from("a@ext")}},

	// Names.
	{name: "name mixed case tabs before colon", in: "FrOm\t\t:\t<treasury@ours>\n\n", want: []got{from("<treasury@ours>")}},
	{name: "name spaces before colon", in: "FROM   : x@ours\n", want: []got{from("x@ours")}},
	{name: "name folded before colon LF", in: "From: m@ext\nFrom\n\t:payroll@hq.ours\n\nbody", want: []got{from("m@ext"), from("payroll@hq.ours")}},
	{name: "name folded before colon CRLF", in: "From\r\n :x@ours\r\n\r\n", want: []got{from("x@ours")}},
	{name: "name folded before colon bare CR", in: "From\r\t: x@ours\n", want: []got{from("x@ours")}},
	{name: "name folded twice with blank line", in: "From \n \n\t:x@ours\n", want: []got{from("x@ours")}},
	{name: "NUL inside name", in: "Fr\x00om: x@ours\n", want: []got{from("x@ours")}},
	{name: "NUL before name", in: "\x00From: x@ours\n", want: []got{from("x@ours")}},
	{name: "control bytes inside name", in: "F\x01r\x7fom\x00 : x@ours\n", want: []got{from("x@ours")}},
	{name: "control byte then indented name", in: "\x01 From: x@ours\n", want: []got{from("x@ours")}},
	{name: "name not folded mid-word", in: "Fr\n\tom: x@ours\n"},
	{name: "longer name is not From", in: "From-X: a@ours\nXFrom: b@ours\nResent-From-X: c@ours\n", all: true},
	{name: "Reply-To never", in: "Reply-To: a@ours\nTo: b@ours\nCc: c@ours\n\n", all: true},
	{name: "Sender and Resent-From when all", in: "Sender: s@ours\nresent-FROM : r@ours\nFrom: f@ours\n", all: true,
		want: []got{sender("s@ours"), resent("r@ours"), from("f@ours")}},
	{name: "Sender and Resent-From not by default", in: "Sender: s@ours\nResent-From: r@ours\nFrom: f@ours\n",
		want: []got{from("f@ours")}},

	// Values.
	{name: "repeated From fields", in: "From: a@ext\nFrom: Margaret <m@ours>\nFrom: b@ext\n\n",
		want: []got{from("a@ext"), from("Margaret <m@ours>"), from("b@ext")}},
	{name: "fold quoted three lines CRLF", in: "From: \"Margaret Okafor,\r\n Chief Financial\r\n Officer\"\r\n <m@ours>\r\nTo: x\r\n\r\n",
		want: []got{from("\"Margaret Okafor, Chief Financial Officer\" <m@ours>")}},
	{name: "fold after dot", in: "From: Payroll <payroll@hq.\n\tours.example>\n", want: []got{from("Payroll <payroll@hq.\tours.example>")}},
	{name: "blank first line blank-only continuation", in: "From:\n \t\n\t<noc@ours>\nTo: x\n\n",
		want: []got{from("<noc@ours>")}},
	{name: "trailing blanks trimmed", in: "From: \t a@ours \t\r\n", want: []got{from("a@ours")}},
	{name: "NUL and controls kept in value", in: "From: noc@acme\x00-corp \"T\b\x7f\" <x@y>\n", want: []got{from("noc@acme"), from("noc@acme\x00-corp \"T\b\x7f\" <x@y>")}},

	// mutt reads a line up to its NUL and glues the next line on there (see joiner).
	{name: "NUL glues the next line on", in: "From: Mallory <x@evil.example>\x00\nX-Note: ceo@ours.example\n\n",
		want: []got{from("Mallory <x@evil.example>\x00"), from("Mallory <x@evil.example>X-Note: ceo@ours.example")}},
	{name: "NUL drops the rest of its line", in: "From: x@evil\x00 <ceo@ours>\nTo: ceo@ours\n\n",
		want: []got{from("x@evil\x00 <ceo@ours>"), from("x@evilTo: ceo@ours")}},
	{name: "NUL in a name glues its rest on", in: "Fr\x00\nom: ceo@ours\n\n", want: []got{from("ceo@ours")}},
	{name: "NUL at a line start drops the line", in: "\x00junk\nFrom: ceo@ours\n\n", want: []got{from("ceo@ours"), from("ceo@ours")}},
	{name: "NUL in another field joins no sender field", in: "Subject: a\x00\nFrom: ceo@ours\n\n", want: []got{from("ceo@ours")}},
	{name: "NUL glues in a chain and folds", in: "From: x@evil\x00a\n\x00b\n <ceo\x00\n@ours>\n\t(c)  \nTo: t\n\n",
		want: []got{from("x@evil\x00a"), from("x@evil <ceo@ours> (c)")}},
	{name: "NUL glues the empty line on", in: "X-A: a\x00\n\nFrom: ceo@ours\n\nFrom: not@header\n",
		want: []got{from("ceo@ours")}, head: 25},
	{name: "NUL glues the empty CRLF line on", in: "X-A: a\x00\r\n\r\nFrom: ceo@ours\r\n\r\nFrom: not@header\r\n",
		want: []got{from("ceo@ours")}, head: 29},
	{name: "NUL glues a blank line on", in: "X-A: a\x00\n \nFrom: ceo@ours\n\nFrom: not@header\n",
		want: []got{from("ceo@ours")}},
	{name: "NUL before EOF", in: "From: a@evil\x00x", want: []got{from("a@evil\x00x")}},
	{name: "NUL line last", in: "From: a@evil\x00x\n", want: []got{from("a@evil"), from("a@evil\x00x")}},
	{name: "8-bit bytes in value", in: "From: Acm\xc3\xa9 <b@acm\xc3\xa9-corp.example>\xff\n", want: []got{from("Acm\xc3\xa9 <b@acm\xc3\xa9-corp.example>\xff")}},
	{name: "8-bit and NUL in earlier fields", in: "Subject: n\xfa \xc3\x28\nX-Mailer: E \x00\x01\x1b 2.0\nFrom: t@ours\n\n", want: []got{from("t@ours")}},

	// Lines that are not fields.
	{name: "mbox From line first", in: "From priya@ext Thu Oct  3 16:45:11 2024\nFrom: \"Priya\" <priya@ext>\n\n",
		want: []got{from("\"Priya\" <priya@ext>")}},
	{name: "mbox From line with colon later", in: "From x@y 16:45:11\n\n"},
	{name: "gt From line in header", in: "Date: d\n>From mallory@ext  Thu Oct  3 16:45:11 2024\nSubject: s\nFrom: T <t@ours>\n\n",
		want: []got{from("T <t@ours>")}},
	{name: "garbage lines do not end the scan", in: "X: 1\nthis is not a field\n\x00\xff\n: empty name\nFrom: a@ours\n",
		want: []got{from("a@ours")}},

	// Indented lines.
	{name: "indented first line", in: "\t  From: \"Treasury\" <treasury@ours>\nReceived: x\nFrom: Mallory <m@ext>\n\n",
		want: []got{from("\"Treasury\" <treasury@ours>"), from("Mallory <m@ext>")}},
	{name: "indented first line folded", in: " From: a\n\t@ours\n", want: []got{from("a\t@ours")}},
	{name: "indented line after non-field line", in: "From x@y date\n From: a@ours\n", want: []got{from("a@ours")}},
	{name: "indented From after real field continues it", in: "Subject: Fwd: invoice\n From: Ann <ann@ours>\nFrom: p@ext\n\n",
		want: []got{from("p@ext")}},
	{name: "indented From after From continues it", in: "From: p@ext\n From: Ann <ann@ours>\n",
		want: []got{from("p@ext From: Ann <ann@ours>")}},
	{name: "blank-only first line then indented From", in: " \n\tFrom: a@ours\n", want: []got{from("a@ours")}},

	// Bare CR and CR CR LF.
	{name: "bare CR in Received starts From", in: "Received: from x\n  by y; date\rFrom: payroll@hq.example\nFrom: P <p@ext>\n\n",
		want: []got{from("payroll@hq.example"), from("P <p@ext>")}},
	{name: "bare CR From runs to end of field", in: "Received: x\rFrom: a@ext\n\t@ours\nTo: y\n",
		want: []got{from("a@ext\t@ours")}},
	// A field that begins after a bare CR exists only for readers that end lines there:
	// its value ends at the next bare CR for them.
	{name: "bare CR Sender only when all", in: "Received: x\rSender: s@ours\rResent-From: r@ours\n", all: true,
		want: []got{sender("s@ours"), resent("r@ours")}},
	{name: "bare CR Sender not by default", in: "Received: x\rSender: s@ours\n"},
	// A bare CR inside a real field: kept for readers that end lines at LF alone, the
	// value cut there for the others.
	{name: "bare CR inside From value kept", in: "From: a@ext\r@ours\n", want: []got{from("a@ext\r@ours"), from("a@ext")}},
	{name: "bare CR From inside Message-ID", in: "Message-ID: <x@y>\rFrom: noc@ours\n", want: []got{from("noc@ours")}},
	{name: "bare CR From inside Content-Type", in: "Content-Type: text/plain\rFrom: noc@ours\nFrom: a@ext\n\n",
		want: []got{from("noc@ours"), from("a@ext")}},
	{name: "bare CR fold inside Message-ID", in: "Message-ID: <x@y>\r From: noc@ours\n"},
	{name: "bare CR From inside From", in: "From: a@ext\rFrom: noc@ours\n",
		want: []got{from("a@ext\rFrom: noc@ours"), from("a@ext"), from("noc@ours")}},
	{name: "bare CR then blank is a fold", in: "From: a\r\tb@ours\n", want: []got{from("a\tb@ours")}},
	{name: "bare CR then blank in other field is a fold", in: "Subject: a\r\tFrom: b@ours\n"},
	{name: "bare CR then name folded before colon", in: "Received: x\rFrom\n\t: noc@ours\n", want: []got{from("noc@ours")}},
	{name: "bare CR garbage keeps the field an indented line continues", in: "Received: x\r: junk\n From: a@ours\n"},
	{name: "bare CR name with NUL", in: "X: y\rFr\x00om: noc@ours\n", want: []got{from("noc@ours")}},
	// Old Mac line ends: for a reader that ends lines at CR, CR CR is the empty line that
	// ends the header (the last From is body); for one that ends them at LF alone, it is
	// all one Subject field. No reader shows c@ours as a sender.
	{name: "bare CR only line ends", in: "Subject: s\rFrom: a@ext\rTo: b\r\rFrom: c@ours\n",
		want: []got{from("a@ext")}},
	{name: "bare CR only line ends with From first", in: "From: a@ext\rTo: ceo@ours\r\rbody\r",
		want: []got{from("a@ext\rTo: ceo@ours\r\rbody"), from("a@ext")}},
	{name: "CR CR LF is not an empty line", in: "Subject: s\r\r\nFrom: \"M\" <m@ours>\n\nbody", want: []got{from("\"M\" <m@ours>")}},
	{name: "CR CR LF at line start is not an empty line", in: "Subject: s\n\r\r\nFrom: m@ours\n\n", want: []got{from("m@ours")}},
	{name: "CR CR LF in From value", in: "From: a\r\r\n\tb@ours\n", want: []got{from("a\r\tb@ours"), from("a")}},
	{name: "bare CR at line start then From", in: "Subject: s\n\rFrom: x@ours\n", want: []got{from("x@ours")}},
	{name: "bare CR at line start then indented From", in: "Subject: s\n\r\tFrom: x@ours\n", want: []got{from("x@ours")}},
	{name: "bare CR at line start ends From", in: "From: a@ext\n\r\tb@ours\n", want: []got{from("a@ext")}},
	{name: "bare CR at line start then indented From after From", in: "From: a@ext\n\r\tFrom: b@ours\n", want: []got{from("a@ext"), from("b@ours")}},
	{name: "LF CR LF ends header", in: "From: a@ext\n\r\nFrom: b@ours\n", want: []got{from("a@ext")}},
}

// headerEnd is the length of the header section of msg, its empty line included: the
// spec as a test oracle. The section ends at the first truly empty line: LF LF, LF CRLF
// (CRLF CRLF ends in LF CRLF), or an empty first line.
func headerEnd(msg []byte) int {
	switch {
	case bytes.HasPrefix(msg, []byte("\n")):
		return 1
	case bytes.HasPrefix(msg, []byte("\r\n")):
		return 2
	}
	for i, c := range msg {
		if c != '\n' {
			continue
		}
		if bytes.HasPrefix(msg[i+1:], []byte("\n")) {
			return i + 2
		}
		if bytes.HasPrefix(msg[i+1:], []byte("\r\n")) {
			return i + 3
		}
	}
	return len(msg)
}

func TestHeaderEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0}, {"\n", 1}, {"\r\nx", 2}, {"a: b\n\nc", 6}, {"a: b\r\n\r\nc", 8}, {"a: b\n\r\nc", 7},
		{"a: b\r\r\nc\n", 9}, {"a: b\r\rc", 7}, {"a: b\n\r\r\n", 8},
	} {
		if got := headerEnd([]byte(tc.in)); got != tc.want {
			t.Errorf("headerEnd(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestScan(t *testing.T) {
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			head := headerEnd(in)
			if tc.head != 0 {
				head = tc.head
			}
			for _, sp := range splits() {
				res := run(in, Options{AllSenderFields: tc.all}, sp.wrap)
				if res.err != nil {
					t.Fatalf("%s: Scan error %v", sp.name, res.err)
				}
				if !reflect.DeepEqual(res.fields, tc.want) {
					t.Errorf("%s: fields\n%s want\n%s", sp.name, formatFields(res.fields), formatFields(tc.want))
				}
				checkCopy(t, in, res)
				// Holding a Message-ID or Content-Type for Options.Info changes no reading.
				withInfo := run(in, Options{AllSenderFields: tc.all, Info: func(string, []byte) {}}, sp.wrap)
				if !reflect.DeepEqual(withInfo.fields, tc.want) {
					t.Errorf("%s, with Info: fields\n%s want\n%s", sp.name, formatFields(withInfo.fields), formatFields(tc.want))
				}
				if res.n < int64(head) {
					t.Errorf("%s: n = %d, want at least the header, %d", sp.name, res.n, head)
				}
				if sp.name == "onebyte" && res.n != int64(head) {
					t.Errorf("onebyte: n = %d, want %d (header section)", res.n, head)
				}
			}
		})
	}
}

// TestScanBodyLeftInReader checks that the caller can copy the body after Scan: what Scan
// wrote and what it left in r make the message.
func TestScanBodyLeftInReader(t *testing.T) {
	body := strings.Repeat("From: ceo@ours\n", 10000) // 150 KB, more than one buffer
	msg := "From: a@ext\n\n" + body
	r := strings.NewReader(msg)
	var out bytes.Buffer
	var fields []got
	n, err := Scan(r, &out, Options{}, func(f Reading) error {
		fields = append(fields, got{f.Name, string(f.Value)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []got{from("a@ext")}; !reflect.DeepEqual(fields, want) {
		t.Errorf("fields = %v, want %v", fields, want)
	}
	if n != int64(out.Len()) || n < 13 || n > bufSize {
		t.Errorf("n = %d, wrote %d: want the first read", n, out.Len())
	}
	if _, err := io.Copy(&out, r); err != nil {
		t.Fatal(err)
	}
	if out.String() != msg {
		t.Errorf("message changed: %d bytes, want %d", out.Len(), len(msg))
	}
}

func TestScanReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	for _, tc := range []struct {
		name string
		r    io.Reader
		out  string
	}{
		{"at once", iotest.ErrReader(boom), ""},
		{"after data", io.MultiReader(strings.NewReader("From: a@ours\n"), iotest.ErrReader(boom)), "From: a@ours\n"},
		{"timeout", iotest.TimeoutReader(strings.NewReader("From: a@ours\n")), "From: a@ours\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			n, err := Scan(tc.r, &out, Options{}, func(Reading) error { return nil })
			var ioe *IOError
			if !errors.As(err, &ioe) || ioe.Op != "read" {
				t.Fatalf("err = %v, want *IOError with Op read", err)
			}
			if tc.name != "timeout" && !errors.Is(err, boom) {
				t.Errorf("err = %v, want it to wrap %v", err, boom)
			}
			if out.String() != tc.out || n != int64(len(tc.out)) {
				t.Errorf("wrote %q (n %d), want %q", out.String(), n, tc.out)
			}
		})
	}
	t.Run("no progress", func(t *testing.T) {
		_, err := Scan(emptyReader{}, io.Discard, Options{}, func(Reading) error { return nil })
		var ioe *IOError
		if !errors.As(err, &ioe) || ioe.Op != "read" || !errors.Is(err, io.ErrNoProgress) {
			t.Fatalf("err = %v, want read IOError wrapping io.ErrNoProgress", err)
		}
	})
}

func TestScanWriteError(t *testing.T) {
	boom := errors.New("pipe closed")
	msg := "From: a@ours\n\nbody\n"
	for _, tc := range []struct {
		name  string
		w     io.Writer
		n     int64
		isErr error
	}{
		{"at once", &failWriter{0, boom}, 0, boom},
		{"partial", &failWriter{5, boom}, 5, boom},
		{"short write", shortWriter{}, int64(len(msg) / 2), io.ErrShortWrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			n, err := Scan(strings.NewReader(msg), tc.w, Options{}, func(Reading) error { calls++; return nil })
			var ioe *IOError
			if !errors.As(err, &ioe) || ioe.Op != "write" || !errors.Is(err, tc.isErr) {
				t.Fatalf("err = %v, want write IOError wrapping %v", err, tc.isErr)
			}
			if n != tc.n {
				t.Errorf("n = %d, want %d", n, tc.n)
			}
			if calls != 0 {
				t.Errorf("fn called %d times after a failed write", calls)
			}
			if want := "header: write: " + tc.isErr.Error(); err.Error() != want {
				t.Errorf("err.Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestScanFieldTooLong(t *testing.T) {
	for _, tc := range []struct {
		name string
		max  int
		msg  string
		err  error
	}{
		{"From at max", 100, "From: " + strings.Repeat("a", 100) + "\n\n", nil},
		{"From over max", 100, "From: " + strings.Repeat("a", 101) + "\n\n", ErrFieldTooLong},
		{"folded From over max", 100, "From: " + strings.Repeat("a", 50) + "\n " + strings.Repeat("b", 50) + "\n\n", ErrFieldTooLong},
		{"From over max without line end", 100, "From: " + strings.Repeat("a", 101), ErrFieldTooLong},
		{"bare CR From over max", 100, "Received: x\rFrom: " + strings.Repeat("a", 101) + "\n\n", ErrFieldTooLong},
		{"default max", 0, "From: " + strings.Repeat("a", DefaultMaxField) + "\n\n", nil},
		{"over default max", 0, "From: " + strings.Repeat("a", DefaultMaxField+1) + "\n\n", ErrFieldTooLong},
		{"2 MB References", 1 << 20, "References: " + strings.Repeat("<id@hq.acme-corp.example> ", 2<<20/26) + "\nFrom: a@ext\n\n", nil},
		{"3 MB of Received", 1 << 20, strings.Repeat("Received: from x by hq.acme-corp.example; date\n", 3<<20/48) + "From: a@ext\n\n", nil},
		{"Sender over max is not held by default", 100, "Sender: " + strings.Repeat("a", 200) + "\n\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, sp := range splits()[:3] {
				var longest int
				res := run([]byte(tc.msg), Options{MaxField: tc.max}, sp.wrap)
				for _, f := range res.fields {
					longest = max(longest, len(f.Value))
				}
				if res.err != tc.err {
					t.Fatalf("%s: err = %v, want %v", sp.name, res.err, tc.err)
				}
				if want := strings.Count(tc.msg, "From:"); tc.err == nil && len(res.fields) != want {
					t.Errorf("%s: %d fields, want %d", sp.name, len(res.fields), want)
				}
				if res.err == nil {
					checkCopy(t, []byte(tc.msg), res)
				}
				if lim := cmpOr(tc.max, DefaultMaxField); longest > lim {
					t.Errorf("%s: value of %d bytes reported, over %d", sp.name, longest, lim)
				}
			}
		})
	}
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func TestScanCallbackError(t *testing.T) {
	stop := errors.New("stop")
	msg := "From: a@ours\nFrom: b@ours\n\n"
	calls := 0
	n, err := Scan(strings.NewReader(msg), io.Discard, Options{}, func(Reading) error { calls++; return stop })
	if err != stop {
		t.Errorf("err = %v, want %v", err, stop)
	}
	if calls != 1 {
		t.Errorf("fn called %d times, want 1", calls)
	}
	if n != int64(len(msg)) {
		t.Errorf("n = %d, want %d (the buffer is written before it is scanned)", n, len(msg))
	}
}

// TestScanAllocs checks that Scan allocates nothing per byte or per line: a pooled
// scanner is reused, so a call allocates at most once however big the header is.
func TestScanAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	for _, msg := range []string{
		"From: a@b\n\nbody",
		benchMessage(200, "\n"),
		benchMessage(200, "\r\n"),
		"Received: x\rFrom: " + strings.Repeat("a ", 40000) + "\n\n",
	} {
		r := strings.NewReader(msg)
		fn := func(Reading) error { return nil }
		for _, sp := range splits()[:2] {
			wr := sp.wrap(r)
			allocs := testing.AllocsPerRun(50, func() {
				r.Reset(msg)
				if _, err := Scan(wr, io.Discard, Options{AllSenderFields: true}, fn); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > 1 {
				t.Errorf("%s, %d bytes: %v allocations per call, want at most 1", sp.name, len(msg), allocs)
			}
		}
	}
	// A value too big to keep in the pool grows by doubling: a few allocations per call,
	// none per byte.
	msg := "From: " + strings.Repeat("a", DefaultMaxField) + "\n\n"
	r := strings.NewReader(msg)
	wr := iotest.OneByteReader(r)
	allocs := testing.AllocsPerRun(3, func() {
		r.Reset(msg)
		if _, err := Scan(wr, io.Discard, Options{}, func(Reading) error { return nil }); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 12 {
		t.Errorf("1 MiB From: %v allocations per call, want at most 12", allocs)
	}
}

func TestIOErrorMessage(t *testing.T) {
	err := &IOError{Op: "read", Err: io.ErrUnexpectedEOF}
	if got, want := err.Error(), "header: read: unexpected EOF"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if ErrFieldTooLong.Error() != "header: sender field too long" {
		t.Errorf("ErrFieldTooLong = %q", ErrFieldTooLong)
	}
}
