package cdb_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"testing"

	"block-forged-sender/internal/cdb"
)

func fuzzSeeds(f *testing.F) {
	ref, err := os.ReadFile("testdata/ref.cdb")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ref)
	f.Add(ref[:len(ref)-5])
	f.Add(build(f, nil))
	f.Add(build(f, []record{{"a", "b"}, {"a", "c"}, {"", ""}}))
	f.Add(build(f, []record{{collide[0], "x"}, {collide[1], "y"}, {collide[0], "z"}}))
	f.Add(make([]byte, 2047))
	// A full table: every slot taken, none matching.
	full := make([]byte, 2048)
	for i := range 256 {
		binary.LittleEndian.PutUint32(full[8*i:], 2048+10)
		binary.LittleEndian.PutUint32(full[8*i+4:], 8)
	}
	full = append(full, 1, 0, 0, 0, 1, 0, 0, 0, 'b', 'v')
	for range 8 {
		full = append(full, 0xc4, 0xb5, 0x02, 0, 0, 8, 0, 0)
	}
	f.Add(full)
}

// FuzzReader reads arbitrary bytes as a cdb file: nothing may panic or hang, every
// error wraps ErrCorrupt, and a valid file (one our Writer writes again byte for
// byte from its records) gives every key's values through Lookup and Get.
func FuzzReader(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := cdb.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, cdb.ErrCorrupt) {
				t.Fatalf("NewReader: %v, want ErrCorrupt", err)
			}
			return
		}
		recs, scanErr := forEach(r)
		if scanErr != nil && !errors.Is(scanErr, cdb.ErrCorrupt) {
			t.Fatalf("ForEach: %v, want ErrCorrupt", scanErr)
		}
		keys, values := byKey(recs)
		probe := append([]string{"", "a", "b", collide[0], "\x00"}, keys...)
		for _, k := range probe {
			vs, err := lookup(r, k)
			if err != nil && !errors.Is(err, cdb.ErrCorrupt) {
				t.Fatalf("Lookup(%q): %v, want ErrCorrupt", k, err)
			}
			// Get stops at the first value, so it can succeed where Lookup fails later.
			var first []string
			ferr := r.Lookup([]byte(k), func(v []byte) bool {
				first = append(first, string(v))
				return false
			})
			if (err == nil && (ferr != nil || len(first) > 1 || (len(first) == 1) != (len(vs) > 0))) ||
				(len(first) == 1 && (len(vs) == 0 || first[0] != vs[0])) {
				t.Fatalf("Lookup(%q) = %q, %v; stopping after one value: %q, %v", k, vs, err, first, ferr)
			}
			v, found, gerr := r.Get([]byte(k))
			if (gerr == nil) != (ferr == nil) || found != (len(first) > 0) || (found && string(v) != first[0]) {
				t.Fatalf("Get(%q) = %q, %v, %v; Lookup gave %q, %v", k, v, found, gerr, first, ferr)
			}
		}
		if scanErr != nil || !bytes.Equal(build(t, recs), data) {
			return
		}
		for _, k := range probe {
			vs, err := lookup(r, k)
			if err != nil || !slices.Equal(vs, values[k]) {
				t.Fatalf("valid file: Lookup(%q) = %q, %v, want %q", k, vs, err, values[k])
			}
		}
	})
}

// FuzzRoundTrip writes records taken from the fuzz input and reads them back.
// The input is a sequence of (key length, value length, key, value), lengths one
// byte each; key lengths are taken modulo 4 so that keys repeat.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("\x01\x01ab\x01\x01ac\x00\x00"))
	f.Add([]byte("\x04\x01nbFqx\x04\x01nbYNy\x04\x01nbFqz\x00\x05empty"))
	f.Add([]byte("\x02\x02\x00\xff\xff\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var recs []record
		for len(in) >= 2 {
			kl, vl := int(in[0]%4), int(in[1])
			in = in[2:]
			kl = min(kl, len(in))
			k := string(in[:kl])
			in = in[kl:]
			vl = min(vl, len(in))
			recs = append(recs, record{k, string(in[:vl])})
			in = in[vl:]
		}
		data := build(t, recs)
		r, err := cdb.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		checkReader(t, r, recs)
	})
}
