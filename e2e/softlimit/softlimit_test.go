//go:build linux

// Package softlimit runs the programs as `make build` builds them under the memory limits of
// qmail's run scripts (daemontools' softlimit), in filter and queue mode: the verdicts and
// log lines, the limits the real qmail-queue runs under, and the hard limit too low to start.
package softlimit

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"block-forged-sender/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	rulesText = "@ours.example  we never send from outside\n"
	legitMsg  = "From: Anna <anna@partner.example>\nTo: sales@ours.example\nSubject: offer\n\nHello.\n"
	forgedMsg = "From: \"The CEO\" <ceo@ours.example>\nTo: accounts@ours.example\nSubject: urgent\n\nPay.\n"
	envelope  = "Fanna@partner.example\x00Tsales@ours.example\x00\x00"
	unlimited = 0 // no softlimit at all
)

// The values of softlimit -m the tests run: the 2004 setup guide's run script (15000000),
// pkgsrc's (180000000), one between, and 10000000, the aim of issue 9. (Life with qmail's
// 2000000 is too little for tcpserver itself on a 64-bit glibc.)
var limits = []int{10000000, 15000000, 64000000, 180000000, unlimited}

// fakeQueue is a qmail-queue for the tests: it records its limits (of the shell, whose
// limits its cat reads), the message on fd 0 and the envelope on fd 1, and "queues" only a
// non-empty envelope. A shell script, not a Go program: it must run under the original
// limits, as the real qmail-queue does.
const fakeQueue = `#!/bin/sh
cat /proc/$$/limits >"$BFS_TEST_REC/limits"
cat >"$BFS_TEST_REC/message"
cat <&1 >"$BFS_TEST_REC/envelope"
[ -s "$BFS_TEST_REC/envelope" ] || exit 54
: >"$BFS_TEST_REC/queued"
`

type setup struct {
	bin   string // the programs' directory
	rules string
	queue string // the fake qmail-queue
}

func newSetup(t *testing.T) setup {
	t.Helper()
	testenv.RequireTools(t, "softlimit", "prlimit")
	s := setup{bin: testenv.Binaries(t)}
	dir := t.TempDir()
	s.rules = filepath.Join(dir, "badsenders")
	s.queue = filepath.Join(dir, "qmail-queue")
	if err := os.WriteFile(s.rules, []byte(rulesText), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.queue, []byte(fakeQueue), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(s.bin, "block-forged-sender"), "compile", s.rules).CombinedOutput()
	if err != nil {
		t.Fatalf("compile: %v\n%s", err, out)
	}
	return s
}

// result is what one run of the program gave.
type result struct {
	code           int
	stdout, stderr string
	rec            string // the fake qmail-queue's records (queue mode)
}

// run runs the program in mode (filter or queue) on msg, wrapped in the command wrap (such
// as softlimit -m N; nil: none), with the fake qmail-queue or qmailQueue when not "".
func (s setup) run(t testing.TB, mode string, wrap []string, msg string, env ...string) result {
	t.Helper()
	var argv []string
	argv = append(argv, wrap...)
	if mode == "queue" {
		argv = append(argv, filepath.Join(s.bin, "block-forged-sender-queue"))
	} else {
		argv = append(argv, filepath.Join(s.bin, "block-forged-sender"), "filter")
	}
	rec := t.TempDir()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "BFS_RULES=" + s.rules, "BFS_QMAILQUEUE=" + s.queue,
		"BFS_TEST_REC=" + rec, "QMAILUSER=anna", "QMAILHOST=partner.example", "QMAILRCPTS=sales@ours.example\n"}, env...)
	cmd.Stdin = strings.NewReader(msg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if mode == "queue" {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		cmd.Stdout = r
		go func() { w.WriteString(envelope); w.Close() }()
	}
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String(), rec: rec}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("%q: killed by %v; stderr: %s", argv, ws.Signal(), res.stderr)
		}
	case err != nil:
		t.Fatal(err)
	}
	return res
}

// softlimit is the wrapper of a run script: softlimit -m n, nothing for unlimited.
func softlimit(n int) []string {
	if n == unlimited {
		return nil
	}
	return []string{"softlimit", "-m", strconv.Itoa(n)}
}

func name(n int) string {
	if n == unlimited {
		return "no limit"
	}
	return "softlimit -m " + strconv.Itoa(n)
}

// logFields parses the one log line of stderr into its fields (quoted values unquoted).
func logFields(t *testing.T, stderr string) map[string]string {
	t.Helper()
	line, ok := strings.CutSuffix(stderr, "\n")
	if !ok || strings.Contains(line, "\n") {
		t.Fatalf("want one log line, got %q", stderr)
	}
	if !strings.HasPrefix(line, testenv.LogPrefix) {
		t.Fatalf("log line %q lacks the program prefix", line)
	}
	f, err := testenv.LogValues(line)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// loadable fails the test when the per-message program carries the 32 MiB BSS of a Go
// crypto package (crypto/internal/fips140/drbg.memory): the kernel would kill its exec under
// a small softlimit before any of it ran. The milter daemon and sync are programs of their
// own for this reason (docs/DESIGN.md).
func loadable(t testing.TB, s setup, n int) {
	t.Helper()
	f, err := elf.Open(filepath.Join(s.bin, "block-forged-sender"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, _ := f.Symbols()
	for _, sym := range syms {
		if strings.HasPrefix(sym.Name, "crypto/") {
			t.Fatalf("block-forged-sender links %s (%d bytes): a crypto package, which no softlimit of a qmail run script leaves room for", sym.Name, sym.Size)
		}
	}
}

// TestSoftlimit: under each run script's softlimit, in filter and queue mode, legitimate mail
// passes unchanged and forged mail is rejected, with the one log line; in queue mode the
// real qmail-queue runs under the administrator's limits, not the ones the program raised.
func TestSoftlimit(t *testing.T) {
	s := newSetup(t)
	var own syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &own); err != nil {
		t.Fatal(err)
	}
	for _, n := range limits {
		for _, mode := range []string{"filter", "queue"} {
			for _, tt := range []struct {
				msg     string
				code    int
				verdict string
			}{{legitMsg, 0, "pass"}, {forgedMsg, 31, "reject"}} {
				t.Run(fmt.Sprintf("%s/%s/%s", name(n), mode, tt.verdict), func(t *testing.T) {
					loadable(t, s, n)
					res := s.run(t, mode, softlimit(n), tt.msg)
					if res.code != tt.code {
						t.Fatalf("exit %d, want %d; stderr: %s", res.code, tt.code, res.stderr)
					}
					f := logFields(t, res.stderr)
					if f["verdict"] != tt.verdict || f["exit"] != strconv.Itoa(tt.code) || f["sender"] != "anna@partner.example" {
						t.Errorf("log line %q: want verdict=%s exit=%d sender=anna@partner.example", res.stderr, tt.verdict, tt.code)
					}
					if tt.verdict == "reject" && f["matched"] != "From:ceo@ours.example" {
						t.Errorf("log line %q: want matched=From:ceo@ours.example", res.stderr)
					}
					if mode == "filter" {
						// A rejected message is copied out as well; qmail-qfilter drops it on exit 31.
						if res.stdout != tt.msg {
							t.Errorf("filter output %q, want the message unchanged", res.stdout)
						}
						return
					}
					_, err := os.Stat(filepath.Join(res.rec, "queued"))
					if queued := err == nil; queued != (tt.code == 0) {
						t.Fatalf("queued = %v, want %v", queued, tt.code == 0)
					}
					if tt.code == 0 {
						msg, _ := os.ReadFile(filepath.Join(res.rec, "message"))
						env, _ := os.ReadFile(filepath.Join(res.rec, "envelope"))
						if string(msg) != tt.msg || string(env) != envelope {
							t.Errorf("qmail-queue got %q and envelope %q", msg, env)
						}
					}
					checkQueueLimits(t, res.rec, n, own.Max)
				})
			}
		}
	}
}

// checkQueueLimits checks the limits qmail-queue recorded: softlimit -m n sets the soft
// limits of address space, data segment, stack and locked memory (at most to the hard
// limits), and no hard limit.
func checkQueueLimits(t *testing.T, rec string, n int, hard uint64) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(rec, "limits"))
	if err != nil {
		t.Fatalf("qmail-queue did not run: %v", err)
	}
	var own syscall.Rlimit
	for _, l := range []struct {
		name string
		res  int
	}{{"Max address space", syscall.RLIMIT_AS}, {"Max data size", syscall.RLIMIT_DATA},
		{"Max stack size", syscall.RLIMIT_STACK}, {"Max locked memory", 8 /* RLIMIT_MEMLOCK */}} {
		if err := syscall.Getrlimit(l.res, &own); err != nil {
			t.Fatal(err)
		}
		want := limitText(own.Cur) + " " + limitText(own.Max)
		if n != unlimited {
			// softlimit sets no soft limit above the hard one.
			want = limitText(min(uint64(n), own.Max)) + " " + limitText(own.Max)
		}
		if got := procLimit(t, string(text), l.name); got != want {
			t.Errorf("qmail-queue's %s: %q, want %q (soft, hard)", l.name, got, want)
		}
	}
}

func limitText(v uint64) string {
	if v == ^uint64(0) {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// procLimit returns the soft and hard value of the named line of a /proc/PID/limits text.
func procLimit(t *testing.T, text, name string) string {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			return strings.Join(strings.Fields(rest)[:2], " ")
		}
	}
	t.Fatalf("no %q in %q", name, text)
	return ""
}

// TestHardLimitTooLow: where a hard limit is below what the Go runtime needs, the program
// neither crashes nor prints a trace: one log line naming the limit, its value and the value
// that would work, and exit 51 (qmail-smtpd: 451 qq out of memory), with nothing passed on
// and qmail-queue not started.
func TestHardLimitTooLow(t *testing.T) {
	s := newSetup(t)
	for _, tt := range []struct {
		limit, name string
		value       int
	}{
		{"--as", "RLIMIT_AS (address space; softlimit -a, -m)", 500000000},
		{"--data", "RLIMIT_DATA (data segment; softlimit -d, -m)", 50000000},
	} {
		for _, mode := range []string{"filter", "queue"} {
			t.Run(tt.limit+"/"+mode, func(t *testing.T) {
				v := strconv.Itoa(tt.value)
				res := s.run(t, mode, []string{"prlimit", tt.limit + "=" + v + ":" + v}, legitMsg)
				if res.code != 51 {
					t.Fatalf("exit %d, want 51; stderr: %s", res.code, res.stderr)
				}
				f := logFields(t, res.stderr)
				want := "rlimit: the hard limit " + tt.name + " is " + v + " bytes, the Go runtime needs "
				need, ok := strings.CutPrefix(f["error"], want)
				if f["verdict"] != "tempfail" || f["exit"] != "51" || !ok || len(f) != 3 {
					t.Fatalf("log line %q, want verdict=tempfail exit=51 error=%q...", res.stderr, want)
				}
				if need, _, _ := strings.Cut(need, " "); mustAtoi(t, need) <= tt.value {
					t.Errorf("log line %q: the value that would work is not above the limit", res.stderr)
				}
				if res.stdout != "" {
					t.Errorf("output %q, want none", res.stdout)
				}
				if _, err := os.Stat(filepath.Join(res.rec, "limits")); err == nil {
					t.Errorf("qmail-queue was started")
				}
			})
		}
	}
}

func mustAtoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestQueueMissing: a qmail-queue that cannot be run is the same temporary failure (81) with
// the same error, whether the program starts it through internal/rlimit's trampoline (under
// softlimit) or directly.
func TestQueueMissing(t *testing.T) {
	s := newSetup(t)
	dir := t.TempDir()
	noexec := filepath.Join(dir, "qmail-queue")
	if err := os.WriteFile(noexec, []byte(fakeQueue), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, path, err string }{
		{"missing", filepath.Join(dir, "missing"), "no such file or directory"},
		{"not executable", noexec, "permission denied"},
	} {
		for _, n := range []int{64000000, unlimited} {
			t.Run(tt.name+"/"+name(n), func(t *testing.T) {
				res := s.run(t, "queue", softlimit(n), legitMsg, "BFS_QMAILQUEUE="+tt.path)
				f := logFields(t, res.stderr)
				want := "qmail: qmail-queue: fork/exec " + tt.path + ": " + tt.err
				if res.code != 81 || f["verdict"] != "tempfail" || f["error"] != want {
					t.Errorf("exit %d, log line %q; want 81, verdict=tempfail, error=%q", res.code, res.stderr, want)
				}
			})
		}
	}
}

// TestFieldLimit: under softlimit the longest sender field held is cut to what the limit
// allows (--max-field, 1 MiB by default, is 285594 bytes under 15000000): a field over it
// fails temporarily with the cut in the log line, and a hostile field of that size (addresses,
// encoded words and NULs) is judged.
func TestFieldLimit(t *testing.T) {
	s := newSetup(t)
	loadable(t, s, 15000000)
	for _, tt := range []struct {
		name  string
		size  int
		code  int
		error string
	}{
		{"at the cut", 285594, 0, ""},
		{"over the cut", 285595, 51, "header: sender field too long: over 285594 bytes (--max-field 1048576, cut to fit the memory limit of 15000000 bytes)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := s.run(t, "filter", softlimit(15000000), hostileMessage(tt.size))
			f := logFields(t, res.stderr)
			if res.code != tt.code || f["error"] != tt.error {
				t.Errorf("exit %d, error %q; want %d, %q", res.code, f["error"], tt.code, tt.error)
			}
		})
	}
}

// hostileMessage is a message whose From field value is size bytes of what costs the
// address readings most: encoded words, NULs, quoted strings, comments, many addresses,
// domains of several words (joined as mutt shows them).
func hostileMessage(size int) string {
	unit := "=?utf-8?b?eEBwYXJ0bmVyLmV4YW1wbGUgACB5QGV2aWwuZXhhbXBsZQ==?= a\x00b@c.example, \"q@r.example\" <s@t.example> (u@v.example) w@x.ex ample z "
	v := strings.Repeat(unit, size/len(unit)+1)[:size]
	return "To: sales@ours.example\nFrom: " + v + "\nSubject: hi\n\nbody\n"
}

// BenchmarkPeakRSS reports the peak resident memory of the program for a hostile message
// with a sender field as long as the softlimit allows, and its ratio to the limit:
//
//	go test -run '^$' -bench PeakRSS ./e2e/softlimit
//
// GNU time measures it: the rusage of a child this test starts would include the test's
// own memory, which a vfork child shares until it execs.
func BenchmarkPeakRSS(b *testing.B) {
	testenv.RequireTools(b, "softlimit", "/usr/bin/time")
	s := setup{bin: testenv.Binaries(b)}
	dir := b.TempDir()
	s.rules = filepath.Join(dir, "badsenders")
	if err := os.WriteFile(s.rules, []byte(rulesText), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{6000000, 10000000, 15000000, 64000000, 180000000} {
		field := min(1<<20, (n-4608<<10)/36) // cmd/block-forged-sender's fieldLimit
		for _, m := range []struct {
			name string
			msg  string
			code int
		}{
			{"hostile field", hostileMessage(field), 0},
			// Distinct long addresses: each judged; what is remembered of them stays bounded.
			{"40 long fields", longFields(40, field), 0},
		} {
			b.Run(name(n)+"/"+m.name, func(b *testing.B) {
				loadable(b, s, n)
				var peak int
				for b.Loop() {
					res := s.run(b, "filter", append([]string{"/usr/bin/time", "-f", "maxrss=%M"}, softlimit(n)...), m.msg)
					_, kib, ok := strings.Cut(res.stderr, "\nmaxrss=")
					if res.code != m.code || !ok {
						b.Fatalf("exit %d, want %d: %s", res.code, m.code, res.stderr)
					}
					peak = max(peak, mustAtoi(b, strings.TrimSpace(kib))<<10)
				}
				b.ReportMetric(float64(peak), "peak-RSS-bytes")
				b.ReportMetric(float64(peak)/float64(n), "of-limit")
			})
		}
	}
}

// longFields is a message with n From fields of size bytes, each one distinct address.
func longFields(n, size int) string {
	var b strings.Builder
	b.WriteString("To: sales@ours.example\n")
	for i := range n {
		local := strconv.Itoa(i) + strings.Repeat("a", size-len("@partner.example")-10)
		b.WriteString("From: " + local + "@partner.example\n")
	}
	b.WriteString("\nbody\n")
	return b.String()
}

// TestEntryPoint: the programs start at internal/rlimit's entry, on the systems that have
// it: the ELF entry address is that symbol's.
func TestEntryPoint(t *testing.T) {
	if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		t.Skipf("no entry on %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	checkEntry(t, filepath.Join(testenv.Binaries(t), "block-forged-sender"))
}

func checkEntry(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	// The assembly function; with its Go declaration the linker names it entry.abi0.
	const entry = "block-forged-sender/internal/rlimit.entry"
	for _, s := range syms {
		if s.Value == f.Entry && (s.Name == entry || s.Name == entry+".abi0") {
			return
		}
	}
	for _, s := range syms {
		if s.Value == f.Entry && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			t.Fatalf("%s starts at %s, not %s: built without -ldflags=-E=%s", path, s.Name, entry, entry)
		}
	}
	t.Fatalf("%s: no function at the ELF entry %#x", path, f.Entry)
}
