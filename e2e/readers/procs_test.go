package readers

// The readers as processes: one long-running node process (jsmime, postal-mime,
// mailparser) and one python process (email, policy.default and compat32), each reading
// messages framed over a pipe; mutt, one run per batch over an MMDF mailbox.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"block-forged-sender/internal/testenv"
)

// shown is one thing a reader puts in front of a person for a sender field: a parsed
// mailbox (Name, Address) or the field rendered as text.
type shown struct {
	Field   string `json:"field"`
	Name    string `json:"name"`
	Address string `json:"address"`
	Text    string `json:"text"`
	Error   string `json:"error"`
}

// reading is what one reader made of one message.
type reading struct {
	Shown []shown `json:"shown"`
	Error string  `json:"error"`
}

// pipeReader is a long-running driver process.
type pipeReader struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	mu   sync.Mutex
}

func startPipe(name string, env []string, args ...string) (*pipeReader, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return &pipeReader{name: name, cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}, nil
}

// read sends msgs and returns, for each, the readings by reader name.
func (p *pipeReader) read(msgs [][]byte) ([]map[string]reading, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriter(p.in)
		for _, m := range msgs {
			fmt.Fprintf(w, "%d\n", len(m))
			w.Write(m)
		}
		werr <- w.Flush()
	}()
	res := make([]map[string]reading, len(msgs))
	for i := range msgs {
		line, err := p.out.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("%s: reading result %d of %d: %v", p.name, i+1, len(msgs), err)
		}
		if err := json.Unmarshal(line, &res[i]); err != nil {
			return nil, fmt.Errorf("%s: %v in %q", p.name, err, line)
		}
	}
	return res, <-werr
}

func (p *pipeReader) close() {
	p.in.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
	}
}

// pool is every reader, started once per test process.
type pool struct {
	node, python *pipeReader
	muttDir      string
	versions     map[string]string
}

var (
	npmOnce  sync.Once
	poolOnce sync.Once
	thePool  *pool
	poolErr  error
	tempDir  string
)

const jsmimeTarball = "jsmime-49547b5.tar.gz"

// readers returns the started readers, or ends the test with testenv.CannotRun when one
// cannot run here.
func readers(t testing.TB) *pool {
	t.Helper()
	testenv.RequireTools(t, "node", "python3", "mutt", "script", "tar")
	dir := filepath.Join(testenv.Root(), "e2e", "readers")
	tarball := filepath.Join(sharedDir(), "vendor", jsmimeTarball)
	if _, err := os.Stat(tarball); err != nil {
		testenv.CannotRun(t, "jsmime: %v", err)
	}
	poolOnce.Do(func() { thePool, poolErr = startPool(dir, tarball) })
	if poolErr != nil {
		t.Fatal(poolErr)
	}
	if _, ok := thePool.versions["postal-mime"]; !ok {
		// They come from the npm registry, not from Debian: .ci/run sets BFS_NPM_READERS=1
		// once its npm install worked, and then they must be there.
		if os.Getenv("BFS_NPM_READERS") == "1" {
			t.Fatal("postal-mime and mailparser are not installed in e2e/readers/node_modules, and BFS_NPM_READERS=1 requires them")
		}
		npmOnce.Do(func() {
			t.Logf("postal-mime and mailparser are not installed, so not asked: npm install --no-package-lock --ignore-scripts in e2e/readers adds them")
		})
	}
	return thePool
}

func startPool(dir, tarball string) (*pool, error) {
	var err error
	if tempDir, err = os.MkdirTemp("", "bfs-readers-"); err != nil {
		return nil, err
	}
	if out, err := exec.Command("tar", "-xzf", tarball, "-C", tempDir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("tar: %v: %s", err, out)
	}
	jsmime := filepath.Join(tempDir, strings.TrimSuffix(jsmimeTarball, ".tar.gz"))
	p := &pool{versions: map[string]string{"jsmime": "49547b5"}}
	if p.node, err = startPipe("node", []string{"BFS_JSMIME_DIR=" + jsmime}, "node", filepath.Join(dir, "readers.mjs")); err != nil {
		return nil, err
	}
	if p.python, err = startPipe("python3", nil, "python3", filepath.Join(dir, "readers.py")); err != nil {
		return nil, err
	}
	p.muttDir = filepath.Join(tempDir, "mutt")
	if err := os.Mkdir(p.muttDir, 0o700); err != nil {
		return nil, err
	}
	for _, v := range []struct{ name, arg0, arg1 string }{{"node", "node", filepath.Join(dir, "readers.mjs")}, {"python", "python3", filepath.Join(dir, "readers.py")}} {
		out, err := exec.Command(v.arg0, v.arg1, "--version").Output()
		if err != nil {
			return nil, fmt.Errorf("%s --version: %v", v.name, err)
		}
		var m map[string]string
		if err := json.Unmarshal(out, &m); err != nil {
			return nil, err
		}
		for k, s := range m {
			p.versions[k] = s
		}
	}
	out, err := exec.Command("mutt", "-v").Output()
	if err != nil {
		return nil, fmt.Errorf("mutt -v: %v", err)
	}
	p.versions["mutt"], _, _ = strings.Cut(string(out), "\n")
	return p, nil
}

func closePool() {
	if thePool != nil {
		thePool.node.close()
		thePool.python.close()
	}
	if tempDir != "" {
		os.RemoveAll(tempDir)
	}
}

// readAll returns, for each message, the readings of every reader.
func (p *pool) readAll(msgs [][]byte) ([]map[string]reading, error) {
	var wg sync.WaitGroup
	var nodeRes, pyRes []map[string]reading
	var muttRes []reading
	var nodeErr, pyErr, muttErr error
	wg.Add(3)
	go func() { defer wg.Done(); nodeRes, nodeErr = p.node.read(msgs) }()
	go func() { defer wg.Done(); pyRes, pyErr = p.python.read(msgs) }()
	go func() { defer wg.Done(); muttRes, muttErr = p.mutt(msgs) }()
	wg.Wait()
	for _, err := range []error{nodeErr, pyErr, muttErr} {
		if err != nil {
			return nil, err
		}
	}
	res := make([]map[string]reading, len(msgs))
	for i := range msgs {
		res[i] = map[string]reading{}
		for k, v := range nodeRes[i] {
			res[i][k] = v
		}
		for k, v := range pyRes[i] {
			res[i][k] = v
		}
		res[i]["mutt"] = muttRes[i]
	}
	return res, nil
}

// muttEnd ends each message's output of the display filter.
const muttEnd = "\x01readers-end\x01\n"

var muttMu sync.Mutex

// mutt shows each message in mutt's pager and returns the sender fields of the header as
// the pager draws it: decoded (RFC 2047), in the terminal's charset (UTF-8), refolded. The
// messages go into one MMDF mailbox (no "From " quoting changes them; a message that does
// not end in a line end gets one, and one holding an MMDF separator line is not read), and
// mutt, in a pseudo-terminal made by script(1), is driven by push: display each message
// through $display_filter, which appends what the pager would show to a file.
func (p *pool) mutt(msgs [][]byte) ([]reading, error) {
	muttMu.Lock()
	defer muttMu.Unlock()
	dir := p.muttDir
	box, out := filepath.Join(dir, "box"), filepath.Join(dir, "out")
	os.Remove(out)
	var b bytes.Buffer
	var index []int // message number in the box of each msg, -1 if not there
	n := 0
	const sep = "\x01\x01\x01\x01\n"
	for _, m := range msgs {
		if bytes.Contains(m, []byte("\n\x01\x01\x01\x01")) || bytes.HasPrefix(m, []byte("\x01\x01\x01\x01")) {
			index = append(index, -1)
			continue
		}
		b.WriteString(sep)
		b.Write(m)
		if len(m) == 0 || m[len(m)-1] != '\n' {
			b.WriteByte('\n')
		}
		b.WriteString(sep)
		index = append(index, n)
		n++
	}
	res := make([]reading, len(msgs))
	if n == 0 {
		return res, nil
	}
	if err := os.WriteFile(box, b.Bytes(), 0o600); err != nil {
		return nil, err
	}
	rc := strings.Join([]string{
		"set mbox_type=MMDF", "set sort=mailbox-order", "set folder=" + dir, "set spoolfile=" + box,
		"set record=", "set postponed=" + filepath.Join(dir, "postponed"), "set mbox=" + filepath.Join(dir, "mbox"),
		"set tmpdir=" + dir, "set header_cache=", "set read_only=yes", "set mark_old=no", "set move=no",
		"set quit=yes", "set wait_key=no", "set beep=no", "set charset=utf-8", "set pager_stop=yes",
		`set display_filter="cat >> ` + out + `; printf '\\001readers-end\\001\\n' >> ` + out + `"`,
		"ignore *", "unignore from: sender: resent-from:",
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "muttrc"), []byte(rc), 0o600); err != nil {
		return nil, err
	}
	push := strings.Repeat("<display-message><exit><next-entry>", n) + "<quit>"
	cmdline := "mutt -n -F " + filepath.Join(dir, "muttrc") + " -R -f " + box + " -e 'push " + push + "'"
	cmd := exec.Command("script", "-qfec", cmdline, "/dev/null")
	cmd.Env = []string{"HOME=" + dir, "TERM=xterm", "LANG=C.UTF-8", "PATH=" + os.Getenv("PATH")}
	cmd.Dir = dir
	var screen bytes.Buffer
	cmd.Stdout, cmd.Stderr = &screen, &screen
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("mutt: %v", err)
		}
	case <-time.After(2*time.Minute + time.Duration(n)*100*time.Millisecond):
		cmd.Process.Kill()
		<-done
		return nil, fmt.Errorf("mutt: timed out")
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("mutt showed nothing: %v", err)
	}
	parts := strings.Split(string(data), muttEnd)
	if len(parts) != n+1 {
		return nil, fmt.Errorf("mutt showed %d messages of %d", len(parts)-1, n)
	}
	for i, k := range index {
		if k >= 0 {
			res[i] = muttFields(parts[k])
		}
	}
	return res, nil
}

// muttFields returns the sender fields of the header mutt's pager drew.
func muttFields(page string) reading {
	var lines []string
	for _, l := range strings.Split(page, "\n") {
		if l == "" {
			break // the end of the header mutt drew; the body follows
		}
		if (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) && len(lines) > 0 {
			lines[len(lines)-1] += l
			continue
		}
		lines = append(lines, l)
	}
	var r reading
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		for _, f := range []string{"From", "Sender", "Resent-From"} {
			if strings.EqualFold(strings.TrimSpace(name), f) {
				r.Shown = append(r.Shown, shown{Field: f, Text: value})
			}
		}
	}
	return r
}
