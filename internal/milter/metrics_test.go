package milter

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"block-forged-sender/internal/header"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/rules"
)

// decidedBy is a rejection by a rule with reason.
func decidedBy(reason string) policy.Decision {
	return policy.Decision{Verdict: policy.Reject, Decider: &policy.Checked{Match: rules.Match{Block: &rules.Rule{Reason: reason}}}}
}

func TestMetrics(t *testing.T) {
	m := new(Metrics)
	forged := decidedBy(`our "domain" \ forged`)
	m.observe(Entry{Verdict: VerdictReject, Decision: forged, Elapsed: 3 * time.Millisecond})
	m.observe(Entry{Verdict: VerdictReject, Decision: forged, Elapsed: time.Millisecond})
	m.observe(Entry{Verdict: VerdictReject, Decision: decidedBy(""), Elapsed: 2 * time.Minute})
	m.observe(Entry{Verdict: VerdictPass, Decision: policy.Decision{Verdict: policy.Pass, Trusted: policy.TrustAuth}})
	m.observe(Entry{Verdict: VerdictPass})
	would := decidedBy("forged: ours")
	would.Verdict, would.WouldReject = policy.Pass, true
	m.observe(Entry{Verdict: VerdictPass, Decision: would})
	m.observe(Entry{Verdict: VerdictTempFail, Err: header.ErrFieldTooLong})
	m.observe(Entry{Verdict: VerdictFailOpen, Err: &PanicError{Value: 1}})
	m.observe(Entry{Verdict: VerdictTempFail, Err: errFake})
	m.observeDecide(100 * time.Microsecond)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go m.Serve(ln)
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := resp.Header.Get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8"; resp.StatusCode != 200 || got != want {
		t.Errorf("status %d, Content-Type = %q; want 200, %q", resp.StatusCode, got, want)
	}
	for path, want := range map[string]int{"/": 404, "/other": 404, "/metrics?x=1": 200} {
		r, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != want {
			t.Errorf("GET %s: status %d, want %d", path, r.StatusCode, want)
		}
	}
	if r, err := http.Post("http://"+ln.Addr().String()+"/metrics", "text/plain", nil); err != nil || r.StatusCode != 405 {
		t.Errorf("POST /metrics: %v %v, want 405", r, err)
	}
	got := string(body)
	wantCounters := `# HELP bfs_milter_messages_total Messages by verdict and reason.
# TYPE bfs_milter_messages_total counter
bfs_milter_messages_total{verdict="failopen",reason="panic"} 1
bfs_milter_messages_total{verdict="pass",reason=""} 1
bfs_milter_messages_total{verdict="pass",reason="trusted"} 1
bfs_milter_messages_total{verdict="reject",reason="our \"domain\" \\ forged"} 2
bfs_milter_messages_total{verdict="reject",reason="sender address rejected"} 1
bfs_milter_messages_total{verdict="tempfail",reason="error"} 1
bfs_milter_messages_total{verdict="tempfail",reason="field too long"} 1
bfs_milter_messages_total{verdict="would_reject",reason="forged: ours"} 1
# HELP bfs_milter_message_seconds Time from MAIL FROM to the verdict.
# TYPE bfs_milter_message_seconds histogram
bfs_milter_message_seconds_bucket{le="0.0001"} 6
bfs_milter_message_seconds_bucket{le="0.00025"} 6
bfs_milter_message_seconds_bucket{le="0.0005"} 6
bfs_milter_message_seconds_bucket{le="0.001"} 7
bfs_milter_message_seconds_bucket{le="0.0025"} 7
bfs_milter_message_seconds_bucket{le="0.005"} 8
`
	if !strings.HasPrefix(got, wantCounters) {
		t.Errorf("metrics start =\n%s\nwant\n%s", got, wantCounters)
	}
	for _, line := range []string{
		"bfs_milter_message_seconds_bucket{le=\"60\"} 8\n",
		"bfs_milter_message_seconds_bucket{le=\"+Inf\"} 9\n",
		"bfs_milter_message_seconds_sum 120.004\n",
		"bfs_milter_message_seconds_count 9\n",
		"bfs_milter_decide_seconds_bucket{le=\"0.0001\"} 1\n",
		"bfs_milter_decide_seconds_count 1\n",
	} {
		if !strings.Contains(got, line) {
			t.Errorf("metrics lack %q:\n%s", line, got)
		}
	}
}

func TestMetricsNil(t *testing.T) {
	var m *Metrics
	m.observe(Entry{Verdict: VerdictPass})
	var b bytes.Buffer
	if err := m.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "bfs_milter_message_seconds_count 0\n") {
		t.Errorf("nil metrics = %q", b.String())
	}
}

func TestParseSpec(t *testing.T) {
	cases := []struct {
		spec, network, addr, err string
	}{
		{"unix:/run/bfs/milter.sock", "unix", "/run/bfs/milter.sock", ""},
		{"local:rel.sock", "unix", "rel.sock", ""},
		{"inet:8894@127.0.0.1", "tcp4", "127.0.0.1:8894", ""},
		{"inet:127.0.0.1:8894", "tcp4", "127.0.0.1:8894", ""},
		{"inet:8894", "tcp4", ":8894", ""},
		{"inet6:8894@[::1]", "tcp6", "[::1]:8894", ""},
		{"inet6:8894@::1", "tcp6", "[::1]:8894", ""},
		{"inet:x@127.0.0.1", "", "", `milter: bad port in socket "inet:x@127.0.0.1"`},
		{"inet:", "", "", `milter: bad socket "inet:": want unix:PATH or inet:PORT@HOST`},
		{"/run/x.sock", "", "", `milter: bad socket "/run/x.sock": want unix:PATH or inet:PORT@HOST`},
		{"tcp:1@h", "", "", `milter: bad socket "tcp:1@h": unknown kind "tcp"`},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			network, addr, err := ParseSpec(tc.spec)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if network != tc.network || addr != tc.addr || gotErr != tc.err {
				t.Errorf("ParseSpec(%q) = %q, %q, %q; want %q, %q, %q", tc.spec, network, addr, gotErr, tc.network, tc.addr, tc.err)
			}
		})
	}
}

func TestListenUnixStale(t *testing.T) {
	path := t.TempDir() + "/m.sock"
	ln, err := Listen("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen("unix:" + path); err == nil {
		t.Error("second Listen on a live socket succeeded")
	}
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close() // leaves a stale socket file behind
	ln2, err := Listen("unix:" + path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln2.Close()
}
