package main

// Fault injection (issue 4 §1): every fault is produced for real against the built program,
// in filter and in queue mode, and must be a temporary failure with its documented exit
// code; nothing may be passed on or queued. The program is started with os.StartProcess so
// that each descriptor can be anything: a pipe, a file, /dev/full, a directory, or closed.

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"block-forged-sender/internal/rules"
)

const (
	partnerEnvelope = "Fanna@partner.example\x00Tsales@ours.example\x00\x00"
	attackerEnvelpe = "Fbounce@evil.example\x00Taccounts@ours.example\x00\x00"
	nobodyID        = 65534
)

// frun is one run of the program in filter or queue mode with every descriptor chosen.
type frun struct {
	mode        string            // "filter" or "queue"
	env         map[string]string // the environment besides PATH
	stdin       *os.File          // fd 0; nil: the default (the case's message)
	stdout      *os.File          // fd 1; nil: the default (filter: captured; queue: the envelope)
	fd3         *os.File          // filter: the envelope; nil: the default
	closeStdin  bool              // fd 0 closed
	closeStdout bool              // fd 1 closed
	closeFD3    bool              // filter: fd 3 closed (envelope from the environment)
	nobody      bool              // run as uid and gid 65534
	fake        map[string]string // queue: settings of the recording qmail-queue
	qmailQueue  string            // queue: the qmail-queue program; "": the recorder
	rec         string            // queue: the recorder's directory
}

// fres is how a run ended.
type fres struct {
	code   int            // exit code; -1 when killed by a signal
	sig    syscall.Signal // the signal that killed it
	stderr []byte
}

// start starts the program. It closes the parent's copies of the child's descriptors; wait
// reaps it.
func (r *frun) start(t *testing.T) (p *os.Process, wait func() fres) {
	t.Helper()
	bin := filepath.Join(binDir, "block-forged-sender")
	env := []string{"PATH=" + os.Getenv("PATH"), hermeticControl(t, r.env)}
	for k, v := range r.env {
		env = append(env, k+"="+v)
	}
	if r.mode == "queue" {
		if r.rec == "" {
			r.rec = recorderDir(t, r.nobody)
		}
		q := r.qmailQueue
		if q == "" {
			q = fakeQueueProgram(t, r.nobody)
		}
		env = append(env, "BFS_QMAILQUEUE="+q, fakeQueueEnv+"="+r.rec)
		for k, v := range r.fake {
			env = append(env, k+"="+v)
		}
	}
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	files := []*os.File{r.stdin, r.stdout, stderr}
	if r.fd3 != nil {
		files = append(files, r.fd3)
	}
	attr := &os.ProcAttr{Dir: "/", Env: env, Files: files, Sys: &syscall.SysProcAttr{}}
	if r.nobody {
		attr.Sys.Credential = &syscall.Credential{Uid: nobodyID, Gid: nobodyID, NoSetGroups: true}
	}
	p, err = os.StartProcess(bin, []string{bin, r.mode}, attr)
	for _, f := range files[:2] {
		if f != nil {
			f.Close()
		}
	}
	if r.fd3 != nil {
		r.fd3.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return p, func() fres {
		st, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		res := fres{code: st.ExitCode()}
		if ws := st.Sys().(syscall.WaitStatus); ws.Signaled() {
			res.sig = ws.Signal()
		}
		stderr.Seek(0, 0)
		res.stderr, _ = io.ReadAll(stderr)
		stderr.Close()
		return res
	}
}

// feed returns the read end of a pipe that carries data and then ends.
func feed(t *testing.T, data []byte) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.Write(data); w.Close() }()
	return r
}

// sink returns the write end of a pipe whose contents got returns once the pipe is closed.
func sink(t *testing.T) (w *os.File, got func() []byte) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() { io.Copy(&buf, r); r.Close(); close(done) }()
	return w, func() []byte { <-done; return buf.Bytes() }
}

// publicDir is a fresh directory that uid 65534 may read (mode 0755), or write (0777).
func publicDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	d, err := os.MkdirTemp("", "bfs-fault-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	return d
}

func recorderDir(t *testing.T, nobody bool) string {
	if nobody {
		return publicDir(t, 0o777)
	}
	return t.TempDir()
}

var (
	fakeOnce sync.Once
	fakeCopy string
	fakeErr  error
)

// fakeQueueProgram is the recording qmail-queue: this test binary, or for uid 65534 a
// copy of it beside the program, in a directory that user can reach.
func fakeQueueProgram(t *testing.T, nobody bool) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !nobody {
		return self
	}
	fakeOnce.Do(func() {
		var b []byte
		if b, fakeErr = os.ReadFile(self); fakeErr == nil {
			fakeCopy = filepath.Join(binDir, "fake-qmail-queue")
			fakeErr = os.WriteFile(fakeCopy, b, 0o755)
		}
	})
	if fakeErr != nil {
		t.Fatal(fakeErr)
	}
	return fakeCopy
}

// needNobody makes the program and its directory reachable by uid 65534, or skips the
// test where this process cannot switch users.
func needNobody(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the program as uid 65534")
	}
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// compiled compiles text with the rules package into dir/name.cdb and returns its path.
func compiled(t *testing.T, dir, name, text string) string {
	t.Helper()
	src := filepath.Join(dir, name)
	if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := rules.Compile(src, src+".cdb"); err != nil {
		t.Fatal(err)
	}
	return src + ".cdb"
}

// cdbHash is the cdb hash function.
func cdbHash(key []byte) uint32 {
	h := uint32(5381)
	for _, c := range key {
		h = (h<<5 + h) ^ uint32(c)
	}
	return h
}

// corruptCDB points every hash table but the one of the meta record outside the file, so
// that the file opens and its meta record reads, but every other look-up meets corruption.
func corruptCDB(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	meta := int(cdbHash([]byte("\x00bfs")) & 255)
	for i := range 256 {
		if i == meta {
			continue
		}
		copy(b[8*i:], []byte{0xf0, 0xff, 0xff, 0x7f, 4, 0, 0, 0})
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// setMtime sets a file's modification time relative to now.
func setMtime(t *testing.T, path string, d time.Duration) {
	t.Helper()
	when := time.Now().Add(d)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

// faultCase is one fault, run in both modes.
type faultCase struct {
	name          string
	filter, queue int    // the exit code wanted in each mode; -1: not applicable
	msg           string // the message on fd 0, unless setup replaces it
	envelope      string // fd 3 (filter) and fd 1 (queue); "" means partnerEnvelope; "-" empty
	setup         func(t *testing.T, r *frun)
	outAny        bool   // filter: the fault comes after the message was streamed to fd 1
	errHas        string // substring of the log's error field
}

// manyFields is a header of n fields, then tail and the body.
func manyFields(n int, tail string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-Trace-%d: hop %d via relay%d.partner.example\n", i, i, i%7)
	}
	return b.String() + tail
}

// manyFroms is a header of n From fields, each with its own partner address, then tail and
// a body.
func manyFroms(n int, tail string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "From: u%d@partner.example\n", i)
	}
	return b.String() + tail + "\nbody\n"
}

// envelopeRcpts is a qmail-queue envelope with n recipients.
func envelopeRcpts(sender string, n int) string {
	var b strings.Builder
	b.WriteString("F" + sender + "\x00")
	for i := range n {
		fmt.Fprintf(&b, "Tuser%d@ours.example\x00", i)
	}
	b.WriteByte(0)
	return b.String()
}

func TestFaults(t *testing.T) {
	rulesDir := t.TempDir()
	text := filepath.Join(rulesDir, "badsenders")
	if err := os.WriteFile(text, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	big := legitMsg + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef012345678\n", 1<<15) // 1.9 MiB
	withRules := func(f func(t *testing.T) string) func(t *testing.T, r *frun) {
		return func(t *testing.T, r *frun) { r.env["BFS_RULES"] = f(t) }
	}
	textWith := func(content string) func(t *testing.T) string {
		return func(t *testing.T) string { return rulesFile(t, content) }
	}
	cdbAlone := func(edit func(t *testing.T, path string)) func(t *testing.T) string {
		return func(t *testing.T) string {
			p := compiled(t, t.TempDir(), "badsenders", testRules)
			edit(t, p)
			return p
		}
	}
	truncate := func(size int64) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			if err := os.Truncate(path, size); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []faultCase{
		// rules
		{name: "rules missing", filter: 55, queue: 55, msg: legitMsg, errHas: "neither",
			setup: withRules(func(t *testing.T) string { return filepath.Join(t.TempDir(), "none") })},
		{name: "rules a directory", filter: 55, queue: 55, msg: legitMsg, errHas: "not a regular file",
			setup: withRules(func(t *testing.T) string { return t.TempDir() })},
		{name: "rules cdb a directory", filter: 55, queue: 55, msg: legitMsg, errHas: "not a regular file",
			setup: withRules(func(t *testing.T) string {
				p := rulesFile(t, testRules)
				if err := os.Mkdir(p+".cdb", 0o755); err != nil {
					t.Fatal(err)
				}
				return p
			})},
		{name: "rules syntax error", filter: 55, queue: 55, msg: legitMsg, errHas: ":3",
			setup: withRules(textWith("@ours.example\n# fine\nnot-an-entry\n"))},
		{name: "rules line over 64 KiB", filter: 55, queue: 55, msg: legitMsg, errHas: ":2",
			setup: withRules(textWith("@ours.example\n@x.example " + strings.Repeat("r", 70000) + "\n"))},
		{name: "rules NUL byte", filter: 55, queue: 55, msg: legitMsg, errHas: ":1",
			setup: withRules(textWith("@ours.example\x00\n"))},
		{name: "rules cdb zero-length", filter: 55, queue: 55, msg: legitMsg, errHas: "cdb",
			setup: withRules(cdbAlone(truncate(0)))},
		{name: "rules cdb truncated in the table", filter: 55, queue: 55, msg: legitMsg, errHas: "cdb",
			setup: withRules(cdbAlone(truncate(1000)))},
		{name: "rules cdb truncated in the records", filter: 55, queue: 55, msg: legitMsg, errHas: "cdb",
			setup: withRules(cdbAlone(func(t *testing.T, p string) {
				fi, _ := os.Stat(p)
				truncate(fi.Size()-40)(t, p)
			}))},
		{name: "rules cdb garbage", filter: 55, queue: 55, msg: legitMsg, errHas: "cdb",
			setup: withRules(cdbAlone(func(t *testing.T, p string) {
				os.WriteFile(p, bytes.Repeat([]byte{0xff, 0x13, 0x00, 0x7f}, 1024), 0o644)
			}))},
		{name: "rules cdb corrupted hash tables", filter: 55, queue: 55, msg: legitMsg, errHas: "corrupt", outAny: true,
			setup: withRules(cdbAlone(corruptCDB))},
		{name: "rules cdb truncated, text older", filter: 55, queue: 55, msg: legitMsg, errHas: "cdb",
			setup: withRules(func(t *testing.T) string {
				dir := t.TempDir()
				p := compiled(t, dir, "badsenders", testRules)
				truncate(1000)(t, p)
				setMtime(t, filepath.Join(dir, "badsenders"), -time.Hour)
				return filepath.Join(dir, "badsenders")
			})},
		{name: "rules text unreadable (uid 65534)", filter: 55, queue: 55, msg: legitMsg, errHas: "permission denied",
			setup: func(t *testing.T, r *frun) {
				needNobody(t)
				d := publicDir(t, 0o755)
				p := filepath.Join(d, "badsenders")
				os.WriteFile(p, []byte(testRules), 0o600)
				r.env["BFS_RULES"], r.nobody = p, true
			}},
		{name: "rules cdb unreadable (uid 65534)", filter: 55, queue: 55, msg: legitMsg, errHas: "permission denied",
			setup: func(t *testing.T, r *frun) {
				needNobody(t)
				d := publicDir(t, 0o755)
				p := compiled(t, d, "badsenders", testRules)
				os.Chmod(p, 0o600)
				setMtime(t, filepath.Join(d, "badsenders"), -time.Hour)
				r.env["BFS_RULES"], r.nobody = filepath.Join(d, "badsenders"), true
			}},

		// input
		{name: "fd 0 closed", filter: 54, queue: 54, msg: legitMsg, errHas: "fd 0",
			setup: func(t *testing.T, r *frun) { r.closeStdin = true }},
		{name: "fd 0 read error (a directory)", filter: 54, queue: 54, errHas: "is a directory",
			setup: func(t *testing.T, r *frun) {
				d, err := os.Open(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				r.stdin = d
			}},
		{name: "message truncated mid-header, empty envelope (DATABYTES)", filter: 91, queue: 91, envelope: "-", outAny: true, errHas: "empty",
			msg: "Received: from x\nFrom: Anna <anna@partner.exa"},
		{name: "sender field over the 1 MiB cap", filter: 51, queue: 51, outAny: true, errHas: "too long",
			msg: "From: \"" + strings.Repeat("x", 1<<20) + "\" <anna@partner.example>\n\nbody\n"},

		// envelope
		{name: "envelope empty", filter: 91, queue: 91, msg: legitMsg, envelope: "-", outAny: true, errHas: "empty"},
		{name: "envelope malformed", filter: 91, queue: 91, msg: legitMsg, envelope: "hello\n", outAny: true, errHas: "does not start with F"},
		{name: "envelope missing the final NUL", filter: 91, queue: 91, msg: legitMsg, envelope: "Fanna@partner.example\x00Tsales@ours.example\x00", outAny: true, errHas: "missing final NUL"},
		{name: "envelope sender without F", filter: 91, queue: 91, msg: legitMsg, envelope: "anna@partner.example\x00Tsales@ours.example\x00\x00", outAny: true, errHas: "does not start with F"},
		{name: "envelope recipient without T", filter: 91, queue: 91, msg: legitMsg, envelope: "Fanna@partner.example\x00sales@ours.example\x00\x00", outAny: true, errHas: "does not start with T"},
		{name: "envelope without recipients", filter: 91, queue: 91, msg: legitMsg, envelope: "Fanna@partner.example\x00\x00", outAny: true, errHas: "no recipient"},
		{name: "envelope with bytes after the end", filter: 91, queue: 91, msg: legitMsg, envelope: partnerEnvelope + "Tz@y\x00\x00", outAny: true, errHas: "after the final NUL"},
		{name: "envelope over 16 MiB", filter: 91, queue: 91, msg: legitMsg, envelope: "F" + strings.Repeat("a", 17<<20) + "\x00Tx@y\x00\x00", outAny: true, errHas: "longer than"},
		{name: "fd 3 closed, no QMAILUSER", filter: 91, queue: -1, msg: legitMsg, outAny: true, errHas: "fd 3 is closed",
			setup: func(t *testing.T, r *frun) { r.closeFD3 = true }},
		{name: "fd 3 a directory, no QMAILUSER", filter: 91, queue: -1, msg: legitMsg, outAny: true, errHas: "fd 3 is closed",
			setup: func(t *testing.T, r *frun) {
				d, err := os.Open(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				r.fd3 = d
			}},

		// output
		{name: "fd 1 closed", filter: 53, queue: 91, msg: legitMsg, errHas: "",
			setup: func(t *testing.T, r *frun) { r.closeStdout = true }},
		{name: "fd 1 is /dev/full", filter: 53, queue: 91, msg: legitMsg, errHas: "",
			setup: func(t *testing.T, r *frun) {
				f, err := os.OpenFile("/dev/full", os.O_RDWR, 0)
				if err != nil {
					t.Skip(err)
				}
				r.stdout = f
			}},
		{name: "fd 1 a pipe nobody reads (EPIPE)", filter: 53, queue: -1, msg: big, errHas: "broken pipe",
			setup: func(t *testing.T, r *frun) {
				pr, pw, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				pr.Close()
				r.stdout = pw
			}},
		{name: "qmail-queue missing", filter: -1, queue: 81, msg: legitMsg, errHas: "no such file",
			setup: func(t *testing.T, r *frun) { r.qmailQueue = filepath.Join(t.TempDir(), "qmail-queue") }},
		{name: "qmail-queue not executable", filter: -1, queue: 81, msg: legitMsg, errHas: "permission denied",
			setup: func(t *testing.T, r *frun) {
				p := filepath.Join(publicDir(t, 0o755), "qmail-queue")
				os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o644)
				r.qmailQueue = p
			}},
		{name: "qmail-queue a directory", filter: -1, queue: 81, msg: legitMsg, errHas: "qmail-queue",
			setup: func(t *testing.T, r *frun) { r.qmailQueue = t.TempDir() }},
		{name: "qmail-queue exits 53 before reading", filter: -1, queue: 53, msg: big, errHas: "qmail-queue exited 53",
			setup: func(t *testing.T, r *frun) { r.fake = map[string]string{"BFS_TEST_FAKE_EARLY": "53"} }},
		{name: "qmail-queue exits 81 after the message", filter: -1, queue: 81, msg: legitMsg, errHas: "qmail-queue exited 81",
			setup: func(t *testing.T, r *frun) { r.fake = map[string]string{"BFS_TEST_FAKE_EXIT": "81"} }},
		{name: "qmail-queue killed by SIGKILL", filter: -1, queue: 81, msg: legitMsg, errHas: "signal",
			setup: func(t *testing.T, r *frun) { r.fake = map[string]string{"BFS_TEST_FAKE_SIGNAL": "9"} }},
		{name: "qmail-queue killed by SIGTERM", filter: -1, queue: 81, msg: legitMsg, errHas: "signal",
			setup: func(t *testing.T, r *frun) { r.fake = map[string]string{"BFS_TEST_FAKE_SIGNAL": "15"} }},
		{name: "qmail-queue hangs, --timeout 1s", filter: -1, queue: 52, msg: legitMsg, errHas: "timed out",
			setup: func(t *testing.T, r *frun) {
				r.fake = map[string]string{"BFS_TEST_FAKE_SLEEP": "1m"}
				r.env["BFS_TIMEOUT"] = "1s"
			}},
		{name: "input stalls, --timeout 1s", filter: 52, queue: 52, errHas: "timed out", outAny: true,
			setup: func(t *testing.T, r *frun) {
				pr, pw, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				pw.Write([]byte("From: anna@partner.example\n"))
				t.Cleanup(func() { pw.Close() })
				r.stdin = pr
				r.env["BFS_TIMEOUT"] = "1s"
			}},
	}
	for _, tc := range cases {
		for _, mode := range []string{"filter", "queue"} {
			want := tc.filter
			if mode == "queue" {
				want = tc.queue
			}
			if want < 0 {
				continue
			}
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				r := &frun{mode: mode, env: map[string]string{"BFS_RULES": text, "TCPREMOTEIP": "203.0.113.66"}}
				if tc.setup != nil {
					tc.setup(t, r)
				}
				res, out := r.runCase(t, tc.msg, tc.envelope)
				checkFault(t, r, res, want, tc.errHas)
				if mode == "filter" && !tc.outAny && len(out) != 0 {
					t.Errorf("fd 1 got %d bytes, want none", len(out))
				}
			})
		}
	}
}

// runCase fills in the default descriptors (the message on a pipe, the envelope on fd 3 or
// fd 1, fd 1 captured in filter mode), runs the program and returns what it wrote to fd 1.
func (r *frun) runCase(t *testing.T, msg, envelope string) (fres, []byte) {
	t.Helper()
	switch envelope {
	case "":
		envelope = partnerEnvelope
	case "-":
		envelope = ""
	}
	if r.stdin == nil && !r.closeStdin {
		r.stdin = feed(t, []byte(msg))
	}
	got := func() []byte { return nil }
	if r.mode == "filter" {
		if r.fd3 == nil && !r.closeFD3 {
			r.fd3 = writeTemp(t, []byte(envelope))
		}
		if r.stdout == nil && !r.closeStdout {
			r.stdout, got = sink(t)
		}
	} else if r.stdout == nil && !r.closeStdout {
		r.stdout = feed(t, []byte(envelope))
	}
	_, wait := r.start(t)
	res := wait()
	return res, got()
}

// checkFault asserts the exit code, the log line (verdict=tempfail for a fault, and the
// exit code) and, in queue mode, that the recording qmail-queue queued nothing, or for a
// pass, that it did.
func checkFault(t *testing.T, r *frun, res fres, want int, errHas string) {
	t.Helper()
	if res.code != want {
		t.Fatalf("exit %d (signal %v), want %d; stderr: %s", res.code, res.sig, want, res.stderr)
	}
	f := logFields(t, res.stderr)
	verdict := "tempfail"
	switch want {
	case 0:
		verdict = "pass"
	case 31, 82:
		verdict = "reject"
	}
	if f["verdict"] != verdict || f["exit"] != strconv.Itoa(want) {
		t.Errorf("log: want verdict=%s exit=%d; got %s", verdict, want, res.stderr)
	}
	if verdict == "tempfail" && !strings.Contains(strings.ToLower(f["error"]), strings.ToLower(errHas)) {
		t.Errorf("log: error field %s lacks %q", f["error"], errHas)
	}
	if r.mode == "queue" {
		if queued := exists(filepath.Join(r.rec, "queued")); queued != (want == 0) {
			t.Errorf("the recording qmail-queue queued = %v with exit %d", queued, want)
		}
	}
}

// TestRulesEmptyPassesAll: an empty rules text is a valid list of no rules, as an empty
// qmail badmailfrom is: it blocks nothing, and mail passes byte for byte.
func TestRulesEmptyPassesAll(t *testing.T) {
	for _, content := range []string{"", "# nothing yet\n\n"} {
		for _, mode := range []string{"filter", "queue"} {
			t.Run(fmt.Sprintf("%q/%s", content, mode), func(t *testing.T) {
				r := &frun{mode: mode, env: map[string]string{"BFS_RULES": rulesFile(t, content)}}
				res, out := r.runCase(t, forgedMsg, attackerEnvelpe)
				checkFault(t, r, res, 0, "")
				checkPassed(t, r, out, []byte(forgedMsg))
			})
		}
	}
}

// checkPassed asserts a passed message arrived byte for byte: on fd 1 in filter mode, at
// the recording qmail-queue in queue mode.
func checkPassed(t *testing.T, r *frun, out, msg []byte) {
	t.Helper()
	if r.mode == "queue" {
		out, _ = os.ReadFile(filepath.Join(r.rec, "message"))
	}
	if !bytes.Equal(out, msg) {
		t.Errorf("passed message: got %d bytes, want the %d bytes sent unchanged", len(out), len(msg))
	}
}

// TestOddButLegal: input that is odd but legal must work in both modes, byte for byte.
func TestOddButLegal(t *testing.T) {
	rules := rulesFile(t, testRules)
	longReason := rulesFile(t, "@x.example "+strings.Repeat("r", 60000)+"\n"+testRules)
	cases := []struct {
		name, msg, envelope, rules string
		want                       int
	}{
		{"100,000 header fields", manyFields(100000, "From: anna@partner.example\n\nbody\n"), partnerEnvelope, rules, 0},
		{"100,000 header fields, then a forged From", manyFields(100000, "From: ceo@ours.example\n\nbody\n"), partnerEnvelope, rules, 31},
		// Every address is looked up as it is found: no cap on how many, no temporary failure.
		{"100,000 From fields", manyFroms(100000, ""), partnerEnvelope, rules, 0},
		{"100,000 From fields, the last one ours", manyFroms(100000, "From: ceo@ours.example\n"), partnerEnvelope, rules, 31},
		{"100,000 recipients", legitMsg, envelopeRcpts("anna@partner.example", 100000), rules, 0},
		{"100,000 recipients, forged sender", legitMsg, envelopeRcpts("ceo@ours.example", 100000), rules, 31},
		{"a 4 MiB field that is not a sender field", "X-Junk: " + strings.Repeat("junk ", 800000) + "\nFrom: anna@partner.example\n\nbody\n", partnerEnvelope, rules, 0},
		{"a 4 MiB line in the body", legitMsg + strings.Repeat("b", 4<<20) + "\n", partnerEnvelope, rules, 0},
		{"truncated mid-header, legit", "Received: from x\nFrom: Anna <anna@partner.exa", partnerEnvelope, rules, 0},
		{"truncated in a forged From", "Received: from x\nFrom: Boss <ceo@ours.example", partnerEnvelope, rules, 31},
		{"no header/body separator, legit", "From: anna@partner.example\nSubject: hi", partnerEnvelope, rules, 0},
		{"no header/body separator, forged", "Subject: hi\nFrom: ceo@ours.example\n", partnerEnvelope, rules, 31},
		{"a rules line of 60,000 bytes", forgedMsg, attackerEnvelpe, longReason, 31},
		{"null sender, one recipient", legitMsg, "F\x00Tpostmaster@ours.example\x00\x00", rules, 0},
	}
	for _, tc := range cases {
		for _, mode := range []string{"filter", "queue"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				r := &frun{mode: mode, env: map[string]string{"BFS_RULES": tc.rules}}
				res, out := r.runCase(t, tc.msg, tc.envelope)
				checkFault(t, r, res, tc.want, "")
				if tc.want == 0 {
					checkPassed(t, r, out, []byte(tc.msg))
				}
			})
		}
	}
}

// TestRulesStaleReadOnlyDir: as uid 65534, with the rules in a root-owned 0755 directory
// and the text newer than its CDB (an admin edited it and forgot to compile), the filter
// reads the text itself, judges right, and the log line tells the admin what to run.
func TestRulesStaleReadOnlyDir(t *testing.T) {
	needNobody(t)
	dir := publicDir(t, 0o755)
	old := compiled(t, dir, "badsenders", "@other.example\n")
	setMtime(t, old, -time.Hour)
	text := filepath.Join(dir, "badsenders")
	if err := os.WriteFile(text, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"filter", "queue"} {
		for _, tc := range []struct {
			name, msg, envelope string
			want                int
		}{
			{"legit", legitMsg, partnerEnvelope, 0},
			{"forged", forgedMsg, attackerEnvelpe, 31},
		} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				r := &frun{mode: mode, nobody: true, env: map[string]string{"BFS_RULES": text}}
				res, out := r.runCase(t, tc.msg, tc.envelope)
				checkFault(t, r, res, tc.want, "")
				if tc.want == 0 {
					checkPassed(t, r, out, []byte(tc.msg))
				}
				w := logFields(t, res.stderr)["warning"]
				if !strings.Contains(w, "is newer than") || !strings.Contains(w, "run: block-forged-sender compile "+text) {
					t.Errorf("log warning %s: want it to say the text is newer and to run block-forged-sender compile %s", w, text)
				}
			})
		}
	}
	if fi, err := os.Stat(old); err != nil || time.Since(fi.ModTime()) < 30*time.Minute {
		t.Errorf("the old CDB was replaced (%v)", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

// TestRulesReplacedWhileRead: the CDB is replaced (rename over it, as compile does) again
// and again while messages run; every message gets the right verdict, none a 55.
func TestRulesReplacedWhileRead(t *testing.T) {
	dir := t.TempDir()
	texts := []string{testRules, "# another version\nphisher@scam.example\n" + testRules + "@spam.example\n"}
	var versions []string
	for i, text := range texts {
		versions = append(versions, compiled(t, dir, "v"+strconv.Itoa(i), text))
	}
	live := filepath.Join(dir, "live.cdb")
	stop := make(chan struct{})
	var replacer sync.WaitGroup
	replacer.Add(1)
	replaced := 0
	go func() {
		defer replacer.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b, _ := os.ReadFile(versions[i%2])
			tmp := live + ".tmp"
			os.WriteFile(tmp, b, 0o644)
			if err := os.Rename(tmp, live); err != nil {
				t.Error(err)
				return
			}
			replaced++
			time.Sleep(200 * time.Microsecond)
		}
	}()
	b, _ := os.ReadFile(versions[0])
	os.WriteFile(live, b, 0o644)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				mode := []string{"filter", "queue"}[(w+i)%2]
				msg, envl, want := legitMsg, partnerEnvelope, 0
				if i%3 == 0 {
					msg, envl, want = forgedMsg, attackerEnvelpe, 31
				}
				r := &frun{mode: mode, env: map[string]string{"BFS_RULES": live}}
				res, out := r.runCase(t, msg, envl)
				if res.code != want {
					t.Errorf("%s message %d: exit %d, want %d; stderr: %s", mode, i, res.code, want, res.stderr)
					continue
				}
				if want == 0 {
					checkPassed(t, r, out, []byte(msg))
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	replacer.Wait()
	if replaced < 10 {
		t.Errorf("the CDB was replaced only %d times while the messages ran", replaced)
	}
}

// TestSignals: a SIGTERM while a message streams kills the program; it never passes or
// refuses the message (no log line with exit 0, 31 or 99), and qmail-queue queues nothing.
// A real SIGPIPE (the reader of fd 1 goes away) is an EPIPE write error, 53. A SIGPIPE sent
// from outside while the pipes are fine is ignored: the message passes intact.
func TestSignals(t *testing.T) {
	rules := rulesFile(t, testRules)
	for _, mode := range []string{"filter", "queue"} {
		t.Run("SIGTERM/"+mode, func(t *testing.T) {
			t.Parallel()
			r := &frun{mode: mode, env: map[string]string{"BFS_RULES": rules}}
			in, fed := endless(t)
			r.stdin = in
			var out func() []byte
			if mode == "filter" {
				r.fd3 = writeTemp(t, []byte(partnerEnvelope))
				r.stdout, out = sink(t)
			} else {
				r.stdout = feed(t, []byte(partnerEnvelope))
			}
			p, wait := r.start(t)
			waitFed(t, fed, 4<<20)
			p.Signal(syscall.SIGTERM)
			res := wait()
			if res.sig != syscall.SIGTERM {
				t.Fatalf("exit %d, signal %v; want killed by SIGTERM (qmail-smtpd: 451 qq crashed)", res.code, res.sig)
			}
			if bytes.Contains(res.stderr, []byte("verdict=pass")) || bytes.Contains(res.stderr, []byte("verdict=reject")) {
				t.Errorf("log: %s", res.stderr)
			}
			if mode == "filter" {
				out()
			} else {
				waitFile(t, filepath.Join(r.rec, "aborted"))
				if exists(filepath.Join(r.rec, "queued")) {
					t.Error("qmail-queue queued the message")
				}
			}
		})
	}
	t.Run("SIGPIPE for real: the reader of fd 1 goes away/filter", func(t *testing.T) {
		t.Parallel()
		r := &frun{mode: "filter", env: map[string]string{"BFS_RULES": rules}}
		in, fed := endless(t)
		r.stdin = in
		r.fd3 = writeTemp(t, []byte(partnerEnvelope))
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.stdout = pw
		_, wait := r.start(t)
		io.CopyN(io.Discard, pr, 4<<20)
		pr.Close()
		res := wait()
		checkFault(t, r, res, 53, "broken pipe")
		// 4 MiB came out, so 4 MiB went in; the feeder counts a write once it returns.
		for deadline := time.Now().Add(10 * time.Second); fed.Load() < 4<<20 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if fed.Load() < 4<<20 {
			t.Errorf("only %d bytes were fed", fed.Load())
		}
	})
	t.Run("SIGPIPE for real: qmail-queue dies mid-stream/queue", func(t *testing.T) {
		t.Parallel()
		r := &frun{mode: "queue", env: map[string]string{"BFS_RULES": rules}, fake: map[string]string{"BFS_TEST_FAKE_EARLY": "53"}}
		in, _ := endless(t)
		r.stdin = in
		r.stdout = feed(t, []byte(partnerEnvelope))
		_, wait := r.start(t)
		checkFault(t, r, wait(), 53, "qmail-queue exited 53")
	})
	t.Run("SIGPIPE from outside/filter", func(t *testing.T) {
		t.Parallel()
		msg := []byte(legitMsg + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef012345678\n", 1<<17))
		r := &frun{mode: "filter", env: map[string]string{"BFS_RULES": rules}}
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.stdin = pr
		r.fd3 = writeTemp(t, []byte(partnerEnvelope))
		var out func() []byte
		r.stdout, out = sink(t)
		p, wait := r.start(t)
		pw.Write(msg[:len(msg)/2])
		p.Signal(syscall.SIGPIPE)
		pw.Write(msg[len(msg)/2:])
		pw.Close()
		checkFault(t, r, wait(), 0, "")
		checkPassed(t, r, out(), msg)
	})
}

// endless returns a pipe carrying a message that never ends, and a count of the bytes
// written into it so far.
func endless(t *testing.T) (*os.File, *atomic.Int64) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	block := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef012345678\n"), 1024)
	go func() {
		defer w.Close()
		w.Write([]byte(legitMsg))
		for {
			k, err := w.Write(block)
			n.Add(int64(k))
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { r.Close() })
	return r, &n
}

// waitFed waits until at least n bytes went into the pipe (so the program is mid-stream).
func waitFed(t *testing.T, fed *atomic.Int64, n int64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if fed.Load() >= n {
			return
		}
	}
	t.Fatal("the program did not read the message")
}

// waitFile waits for a file to appear.
func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if exists(path) {
			return
		}
	}
	t.Fatalf("%s did not appear", path)
}

// TestGiB streams a 1 GiB message through the filter: it passes, byte for byte, in
// constant memory. Skipped by go test -short.
func TestGiB(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB message: not with -short")
	}
	const size = 1 << 30
	rules := rulesFile(t, testRules)
	header := []byte(legitMsg)
	block := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef012345678\n"), 16384) // 944 KiB
	gen := func(w io.Writer) (uint32, error) {
		crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		mw := io.MultiWriter(w, crc)
		if _, err := mw.Write(header); err != nil {
			return 0, err
		}
		for left := int64(size - len(header)); left > 0; {
			b := block
			if int64(len(b)) > left {
				b = b[:left]
			}
			if _, err := mw.Write(b); err != nil {
				return 0, err
			}
			left -= int64(len(b))
		}
		return crc.Sum32(), nil
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &frun{mode: "filter", env: map[string]string{"BFS_RULES": rules}, stdin: inR, stdout: outW,
		fd3: writeTemp(t, []byte(partnerEnvelope))}
	_, wait := r.start(t)
	var sent uint32
	var genErr error
	done := make(chan struct{})
	go func() { sent, genErr = gen(inW); inW.Close(); close(done) }()
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	got, err := io.CopyBuffer(crc, outR, make([]byte, 1<<20))
	outR.Close()
	<-done
	res := wait()
	if err != nil || genErr != nil {
		t.Fatal(err, genErr)
	}
	checkFault(t, r, res, 0, "")
	if got != size || crc.Sum32() != sent {
		t.Errorf("fd 1 got %d bytes with CRC-32C %08x, want %d bytes with %08x", got, crc.Sum32(), int64(size), sent)
	}
	if f := logFields(t, res.stderr); f["size"] != strconv.Itoa(size) {
		t.Errorf("log size=%s, want %d", f["size"], size)
	}
}
