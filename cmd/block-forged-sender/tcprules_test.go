package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTcprules runs the filter behind Debian's real tcpserver with rules compiled by
// the real tcprules: per-client settings in tcp.smtp reach the filter as qmail admins
// write them.
func TestTcprules(t *testing.T) {
	for _, tool := range []string{"tcprules", "tcpserver"} {
		if _, err := exec.LookPath(tool); err != nil {
			requireTool(t, tool+" (Debian package ucspi-tcp)")
		}
	}
	dir := t.TempDir()
	rules := filepath.Join(dir, "badsenders")
	msg := filepath.Join(dir, "forged.eml")
	if err := os.WriteFile(rules, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(msg, []byte(forgedMsg), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, tcpsmtp string
		code          int
		log           string // a substring of the log line
	}{
		{"unknown client", ":allow\n", 31, "verdict=reject"},
		{"relay client", "127.0.0.1:allow,RELAYCLIENT=\"\"\n:allow\n", 0, "trusted=relayclient"},
		{"RELAYCLIENT ignored, BFS_TRUSTED", "127.:allow,RELAYCLIENT=\"\",BFS_IGNORERELAYCLIENT=\"\"\n:allow\n", 31, "verdict=reject"},
		{"allowed address", "127.0.0.1:allow,BFS_ALLOW=\"ceo@ours.example\"\n:allow\n", 0, "verdict=pass"},
		{"monitor mode for one network", "127.:allow,BFS_MODE=\"monitor\"\n:allow\n", 0, `monitor="would reject"`},
		{"client IP reaches the log", ":allow\n", 31, "client=127.0.0.1"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := filepath.Join(dir, strconv.Itoa(i))
			os.Mkdir(sub, 0o755)
			src, cdb, log := filepath.Join(sub, "tcp.smtp"), filepath.Join(sub, "tcp.cdb"), filepath.Join(sub, "log")
			os.WriteFile(src, []byte(tt.tcpsmtp), 0o644)
			in, _ := os.Open(src)
			defer in.Close()
			c := exec.Command("tcprules", cdb, cdb+".tmp")
			c.Stdin = in
			if out, err := c.CombinedOutput(); err != nil {
				t.Fatalf("tcprules: %v %s", err, out)
			}
			port := freePort(t)
			script := `exec 3<&- 4<&- 5<&-; QMAILUSER=bounce QMAILHOST=evil.example QMAILRCPTS=accounts@ours.example BFS_RULES="$1" "$0" filter <"$2" >/dev/null 2>>"$3"; echo "exit $?"`
			srv := exec.Command("tcpserver", "-x", cdb, "-HRl0", "127.0.0.1", strconv.Itoa(port),
				"sh", "-c", script, filepath.Join(binDir, "block-forged-sender"), rules, msg, log)
			srv.Env = []string{"PATH=" + os.Getenv("PATH")}
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { srv.Process.Kill(); srv.Wait() }()
			var conn net.Conn
			var err error
			for try := 0; try < 100; try++ {
				if conn, err = net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("tcpserver did not listen: %v", err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			reply, _ := io.ReadAll(conn)
			conn.Close()
			if got, want := strings.TrimSpace(string(reply)), "exit "+strconv.Itoa(tt.code); got != want {
				l, _ := os.ReadFile(log)
				t.Fatalf("got %q, want %q; log: %s", got, want, l)
			}
			l, _ := os.ReadFile(log)
			if !strings.Contains(string(l), tt.log) {
				t.Errorf("log %q lacks %q", l, tt.log)
			}
		})
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
