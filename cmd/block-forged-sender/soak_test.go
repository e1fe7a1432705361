package main

// The soak test (issue 4 §4): thousands of messages through the program as separate
// processes, several at once, in filter and queue mode, while the rules text is edited
// again and again and its CDB recompiled and replaced, by the compile command and by the
// filters themselves. Off by default:
//
//	BFS_SOAK=2000 BFS_SOAK_CONCURRENCY=4 go test -count=1 -run '^TestSoak$' ./cmd/block-forged-sender
//	go test -count=1 -run '^TestSoak$' ./cmd/block-forged-sender -soak 2000

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var soakFlag = flag.Int("soak", 0, "run the soak test with this many messages (also BFS_SOAK)")

// soakMsg is one kind of message in the soak, and its verdict under every version of the
// rules the editor writes.
type soakMsg struct {
	name, msg, envelope string
	want                int
}

var soakMsgs = []soakMsg{
	{"legit", legitMsg, "Fanna@partner.example\x00Tsales@ours.example\x00\x00", 0},
	{"forged From", forgedMsg, "Fbounce@evil.example\x00Taccounts@ours.example\x00\x00", 31},
	{"forged envelope", legitMsg, "Fceo@hq.ours.example\x00Tsales@ours.example\x00\x00", 31},
	{"phisher", legitMsg, "FPhisher@Scam.Example\x00Tsales@ours.example\x00\x00", 31},
	{"exception", "From: Monitoring <alerts@ours.example>\nSubject: ok\n\nall green\n", "Falerts@ours.example\x00Tops@ours.example\x00\x00", 0},
	{"null sender bounce", legitMsg, "F\x00Tsales@ours.example\x00\x00", 0},
}

// soakRules is version n of the rules text: the same verdicts for soakMsgs, different
// bytes and a different number of entries, so a half-written list would show.
func soakRules(n int) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# version %d\n", n)
	for i := range n % 50 {
		fmt.Fprintf(&b, "@gen%d-%d.example\tgenerated entry\n", n, i)
	}
	b.WriteString(testRules)
	return b.String()
}

func TestSoak(t *testing.T) {
	total := *soakFlag
	if s := os.Getenv("BFS_SOAK"); s != "" && total == 0 {
		total, _ = strconv.Atoi(s)
	}
	if total <= 0 {
		t.Skip("the soak test runs with BFS_SOAK=N or -soak N")
	}
	workers := 4
	if s := os.Getenv("BFS_SOAK_CONCURRENCY"); s != "" {
		workers, _ = strconv.Atoi(s)
	}
	dir := t.TempDir()
	text := filepath.Join(dir, "badsenders")
	bin := filepath.Join(binDir, "block-forged-sender")
	write := func(n int) {
		// The admin's editor replaces the text atomically; a text edited in place can be
		// read half-written by a filter that compiles it, as by any reader.
		tmp := filepath.Join(dir, "edit.new")
		if err := os.WriteFile(tmp, []byte(soakRules(n)), 0o644); err != nil {
			t.Error(err)
		}
		if err := os.Rename(tmp, text); err != nil {
			t.Error(err)
		}
	}
	write(0)
	if out, err := exec.Command(bin, "compile", text).CombinedOutput(); err != nil {
		t.Fatalf("compile: %v: %s", err, out)
	}

	stop := make(chan struct{})
	var edits, compiles atomic.Int64
	var editor sync.WaitGroup
	editor.Add(1)
	go func() {
		defer editor.Done()
		for n := 1; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			write(n)
			edits.Add(1)
			if n%2 == 0 { // every other edit compiled by the admin, the rest by the filters
				if out, err := exec.Command(bin, "compile", text).CombinedOutput(); err != nil {
					t.Errorf("compile: %v: %s", err, out)
				}
				compiles.Add(1)
			}
		}
	}()

	var next atomic.Int64
	var failed, tempfails atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total || failed.Load() > 10 {
					return
				}
				m := soakMsgs[i%len(soakMsgs)]
				env := map[string]string{"BFS_RULES": text, "TCPREMOTEIP": "203.0.113.66"}
				var res result
				var got []byte
				mode := "filter"
				if (i/len(soakMsgs)+w)%2 == 1 {
					mode = "queue"
					var rec string
					res, rec = queueRun(t, proc{env: env, stdin: []byte(m.msg)}, m.envelope, "")
					if queued := exists(filepath.Join(rec, "queued")); queued != (res.code == 0) {
						t.Errorf("message %d (%s, queue): exit %d, queued %v", i, m.name, res.code, queued)
						failed.Add(1)
					}
					got, _ = os.ReadFile(filepath.Join(rec, "message"))
				} else {
					res = proc{args: []string{"filter"}, env: env, stdin: []byte(m.msg), fd3: []byte(m.envelope)}.run(t)
					got = res.stdout
				}
				if res.code != m.want {
					if res.code == 55 {
						tempfails.Add(1)
					}
					t.Errorf("message %d (%s, %s): exit %d, want %d; stderr: %s", i, m.name, mode, res.code, m.want, res.stderr)
					failed.Add(1)
					continue
				}
				if m.want == 0 && !bytes.Equal(got, []byte(m.msg)) {
					t.Errorf("message %d (%s, %s): passed %d bytes, want the %d sent", i, m.name, mode, len(got), len(m.msg))
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	editor.Wait()
	if tempfails.Load() > 0 {
		t.Errorf("%d messages saw the rules unreadable (exit 55): a half-written list", tempfails.Load())
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left in the rules directory: %v", left)
	}
	if edits.Load() < 10 {
		t.Errorf("only %d edits ran during the soak", edits.Load())
	}
	t.Logf("%d messages, %d at once; %d edits of the text, %d compiled by the compile command",
		total, workers, edits.Load(), compiles.Load())
}
