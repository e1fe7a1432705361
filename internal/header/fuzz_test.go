package header

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzScan checks, for any input, that Scan does not panic or fail, copies the input
// exactly, and reports the same fields however the input is split into reads.
func FuzzScan(f *testing.F) {
	for _, tc := range scanCases {
		f.Add([]byte(tc.in), tc.all)
	}
	paths, _ := filepath.Glob(filepath.Join(corpusDir, "*.eml"))
	for _, p := range paths {
		if msg, err := os.ReadFile(p); err == nil && len(msg) <= goldenMax {
			f.Add(msg, true)
		}
	}
	sp := splits()
	f.Fuzz(func(t *testing.T, msg []byte, all bool) {
		opt := Options{AllSenderFields: all, MaxField: 1 << 16}
		whole := run(msg, opt, sp[0].wrap)
		if whole.err != nil && whole.err != ErrFieldTooLong {
			t.Fatalf("Scan error %v", whole.err)
		}
		if whole.err == nil {
			checkCopy(t, msg, whole)
		}
		for _, s := range []split{sp[1], sp[4]} { // one byte, 7 bytes
			res := run(msg, opt, s.wrap)
			if res.err != whole.err {
				t.Fatalf("%s: err %v, whole read: %v", s.name, res.err, whole.err)
			}
			if res.err != nil {
				continue
			}
			checkCopy(t, msg, res)
			if !reflect.DeepEqual(res.fields, whole.fields) {
				t.Fatalf("%s read gives\n%s whole read gives\n%s", s.name, formatFields(res.fields), formatFields(whole.fields))
			}
		}
		// Holding a Message-ID or Content-Type for Options.Info changes no reading.
		info := opt
		info.Info = func(string, []byte) {}
		if res := run(msg, info, sp[1].wrap); res.err != whole.err || whole.err == nil && !reflect.DeepEqual(res.fields, whole.fields) {
			t.Fatalf("with Info: %v\n%s without: %v\n%s", res.err, formatFields(res.fields), whole.err, formatFields(whole.fields))
		}
	})
}

// FuzzReadings checks that Readings (the milter's reading of one field) agrees with
// Scan's reading of the same field in a stream.
func FuzzReadings(f *testing.F) {
	f.Add([]byte("Received"), []byte(" x\rFrom: a@ours"), false)
	f.Add([]byte("From"), []byte(" \"A,\r\n B\" <x@ours>\rSender\r\n\t: s"), true)
	f.Add([]byte("Subject"), []byte(" a\r\r\n\tFrom: b"), false)
	f.Fuzz(func(t *testing.T, name, value []byte, all bool) {
		if _, _, ok := senderName(name, true); !ok && !properName(name) {
			return
		}
		if d := diffReadings(name, value, all); d != "" {
			t.Fatal(d)
		}
	})
}

// properName reports whether name is an RFC 5322 field name: printable ASCII but colon.
func properName(name []byte) bool {
	for _, c := range name {
		if c < '!' || c > '~' || c == ':' {
			return false
		}
	}
	return len(name) > 0
}
