package readers

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var (
	fuzzWorldOnce sync.Once
	fuzzWorld     *world
)

// FuzzReaders is the differential fuzz target: a message, mutated at random, goes through
// every reader, and every sender address one of them shows must be among our candidates,
// with a blocked one refused (the hostile corpus's rules, ours.example). Its seeds are the
// hostile corpus and the generated variants. Each input costs a round trip to the node and
// python processes and a mutt run, so `make fuzz` gives it its own, smaller, count.
func FuzzReaders(f *testing.F) {
	for _, row := range readTSVFile(f, filepath.Join(hostileDir(), "cases.tsv")) {
		if msg, err := os.ReadFile(filepath.Join(hostileDir(), row[0]+".eml")); err == nil {
			f.Add(msg)
		}
	}
	for i, v := range variants() {
		if i%4 == 0 {
			f.Add(v.message(false))
		}
	}
	// Start the readers here, in each fuzzing process, not inside the first input: the
	// fuzzing engine gives one input 10 seconds.
	p := readers(f)
	fuzzWorldOnce.Do(func() {
		// The world outlives each input's test: its rules set is closed at the
		// process's end, not by t.Cleanup.
		fuzzWorld = loadWorld(&keepTB{TB: f}, filepath.Join(hostileDir(), "badsenders"), "ours.example")
	})
	f.Fuzz(func(t *testing.T, msg []byte) {
		res, err := p.readAll([][]byte{msg})
		if err != nil {
			t.Fatal(err)
		}
		c := msgCase{name: "fuzz", msg: msg, kind: fuzzed, w: fuzzWorld}
		problems, _ := judgeCase(c, res[0])
		for _, pr := range problems {
			if _, ok := readerWrong(c, pr); ok {
				continue
			}
			t.Errorf("%s\nmessage: %q", pr, clip(msg))
		}
	})
}

// keepTB is a testing.TB whose Cleanup and TempDir outlive the test they were asked in.
type keepTB struct{ testing.TB }

func (k *keepTB) Cleanup(func()) {}
func (k *keepTB) TempDir() string {
	d, err := os.MkdirTemp(tempDir, "world-")
	if err != nil {
		k.TB.Fatal(err)
	}
	return d
}
