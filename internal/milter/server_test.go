package milter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	lib "github.com/d--j/go-milter"

	"block-forged-sender/internal/header"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/rules"
)

// testRulesText: our domain (with a reason), its subdomains (without), an exception.
const testRulesText = `@acme-corp.example	forged: our domain
.acme-corp.example
!alerts@acme-corp.example	monitoring
`

// testRules is a real rules list, with hooks: a look-up of fault@fault.example fails,
// one of panic@fault.example panics, and one of block@fault.example waits until release
// is closed (after saying so on entered).
type testRules struct {
	set     *rules.Set
	entered chan struct{}
	release chan struct{}
}

var errFake = errors.New("fake: lookup failed")

func newTestRules(t testing.TB) *testRules {
	t.Helper()
	p := filepath.Join(t.TempDir(), "badsenders")
	if err := os.WriteFile(p, []byte(testRulesText), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _, err := rules.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &testRules{set: s, entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (r *testRules) Acquire() (policy.Lookuper, func()) { return r, func() {} }

func (r *testRules) Lookup(addr string, sc rules.Scope) (rules.Match, error) {
	switch addr {
	case "fault@fault.example":
		return rules.Match{}, errFake
	case "panic@fault.example":
		panic("boom")
	case "block@fault.example":
		r.entered <- struct{}{}
		<-r.release
	}
	return r.set.Lookup(addr, sc)
}

// config is a server configuration with the test rules.
func config(t testing.TB, pc policy.Config) (Config, *testRules) {
	r := newTestRules(t)
	if pc.DefaultHost == nil {
		pc.DefaultHost = func() (string, error) { return "acme-corp.example", nil }
	}
	return Config{Policy: &pc, Rules: r}, r
}

// logSink collects the log entries.
type logSink struct {
	mu      sync.Mutex
	entries []Entry
}

func (l *logSink) log(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Elapsed = 0
	l.entries = append(l.entries, e)
}

func (l *logSink) all() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Entry(nil), l.entries...)
}

// startServer serves cfg on a loopback port until the test ends.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(cfg)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// message is one SMTP transaction as the MTA would pass it.
type message struct {
	client  string // client IP; "" for a unix-socket client
	host    string
	auth    string
	queueID string
	sender  string
	rcpts   []string
	fields  [][2]string
}

// act is the outcome of a transaction: the stage of the final reply, and that reply.
type act struct {
	stage string // "mail" or "eoh"
	code  uint16
	reply string
}

// send runs msg through a new milter session on addr, as Postfix does.
func send(t testing.TB, addr string, opts []lib.Option, msg message) act {
	t.Helper()
	bag := lib.NewMacroBag()
	bag.Set(lib.MacroQueueId, msg.queueID)
	bag.Set(lib.MacroAuthAuthen, msg.auth)
	cl := lib.NewClient("tcp", addr, opts...)
	s, err := cl.Session(bag)
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	defer s.Close()
	got, err := runMessage(s, msg)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func runMessage(s *lib.ClientSession, msg message) (act, error) {
	family, ip := lib.FamilyUnix, "/run/smtpd"
	if msg.client != "" {
		family, ip = lib.FamilyInet, msg.client
		if strings.Contains(ip, ":") {
			family = lib.FamilyInet6
		}
	}
	if a, err := s.Conn(msg.host, family, 25, ip); err != nil || a.Type != lib.ActionContinue {
		return act{}, fmt.Errorf("conn: %v %v", a, err)
	}
	if a, err := s.Helo("client.example"); err != nil || a.Type != lib.ActionContinue {
		return act{}, fmt.Errorf("helo: %v %v", a, err)
	}
	a, err := s.Mail(msg.sender, "")
	if err != nil {
		return act{}, err
	}
	if a.Type != lib.ActionContinue {
		return act{"mail", a.SMTPCode, a.SMTPReply}, nil
	}
	for _, r := range msg.rcpts {
		if a, err := s.Rcpt(r, ""); err != nil || a.Type != lib.ActionContinue {
			return act{}, fmt.Errorf("rcpt: %v %v", a, err)
		}
	}
	if a, err := s.DataStart(); err != nil || a.Type != lib.ActionContinue {
		return act{}, fmt.Errorf("data: %v %v", a, err)
	}
	for _, f := range msg.fields {
		if a, err := s.HeaderField(f[0], f[1], nil); err != nil || a.Type != lib.ActionContinue {
			return act{}, fmt.Errorf("header: %v %v", a, err)
		}
	}
	a, err = s.HeaderEnd()
	if err != nil {
		return act{}, err
	}
	if a.Type == lib.ActionContinue {
		_, a, err = s.End()
		if err != nil {
			return act{}, err
		}
		return act{"eom", a.SMTPCode, a.SMTPReply}, nil
	}
	return act{"eoh", a.SMTPCode, a.SMTPReply}, nil
}

const (
	accept   = "250 accept"
	tempfail = "451 4.7.1 temporary failure in the sender check, try again later"
)

// decision is the part of an Entry's decision a test checks.
type decision struct {
	verdict policy.Verdict
	trusted string
	matched string // Source:Address of the decider
	would   bool
}

func decisionOf(d policy.Decision) decision {
	got := decision{verdict: d.Verdict, trusted: d.Trusted, would: d.WouldReject}
	if d.Decider != nil {
		got.matched = d.Decider.Source + ":" + d.Decider.Address
	}
	return got
}

func TestVerdicts(t *testing.T) {
	legit := [][2]string{{"From", " Partner <sales@northwind-traders.example>"}, {"Subject", " hi"}}
	partner := netip.MustParseAddr("192.0.2.7")
	cases := []struct {
		name     string
		policy   policy.Config
		failOpen bool
		maxField int
		msg      message
		want     act
		entry    Entry // Decision and Err are compared apart
		decision decision
		err      error
	}{{
		name:     "legitimate",
		msg:      message{client: "192.0.2.7", host: "mx.northwind-traders.example", queueID: "4Q1", sender: "sales@northwind-traders.example", rcpts: []string{"frontoffice@acme-corp.example"}, fields: legit},
		want:     act{"eoh", 250, accept},
		entry:    Entry{QueueID: "4Q1", Stage: StageHeader, Verdict: VerdictPass, ClientIP: partner, ClientHost: "mx.northwind-traders.example", Sender: "sales@northwind-traders.example", Recipients: []string{"frontoffice@acme-corp.example"}},
		decision: decision{verdict: policy.Pass},
	}, {
		name:     "envelope rejected at MAIL FROM",
		msg:      message{client: "192.0.2.7", host: "unknown", queueID: "4Q2", sender: "noc@acme-corp.example", rcpts: []string{"frontoffice@acme-corp.example"}, fields: legit},
		want:     act{"mail", 550, "550 5.7.1 forged: our domain"},
		entry:    Entry{QueueID: "4Q2", Stage: StageMail, Verdict: VerdictReject, ClientIP: partner, Sender: "noc@acme-corp.example"},
		decision: decision{verdict: policy.Reject, matched: "envelope:noc@acme-corp.example"},
	}, {
		name:     "header From rejected at end of header, default reason",
		msg:      message{client: "2001:db8::1", host: "[2001:db8::1]", queueID: "4Q3", sender: "bounce@lure-mailer.example", rcpts: []string{"a@acme-corp.example", "b@acme-corp.example"}, fields: [][2]string{{"Subject", " x"}, {"From", " CEO <ceo@hq.acme-corp.example>"}}},
		want:     act{"eoh", 550, "550 5.7.1 " + policy.DefaultReason},
		entry:    Entry{QueueID: "4Q3", Stage: StageHeader, Verdict: VerdictReject, ClientIP: netip.MustParseAddr("2001:db8::1"), Sender: "bounce@lure-mailer.example", Recipients: []string{"a@acme-corp.example", "b@acme-corp.example"}},
		decision: decision{verdict: policy.Reject, matched: "From:ceo@hq.acme-corp.example"},
	}, {
		name:     "authenticated session passes unchecked",
		msg:      message{client: "192.0.2.7", host: "unknown", auth: "alice", queueID: "4Q4", sender: "alice@acme-corp.example", fields: legit},
		want:     act{"mail", 250, accept},
		entry:    Entry{QueueID: "4Q4", Stage: StageMail, Verdict: VerdictPass, ClientIP: partner, AuthUser: "alice", Sender: "alice@acme-corp.example"},
		decision: decision{verdict: policy.Pass, trusted: policy.TrustAuth},
	}, {
		name:     "trusted network passes unchecked",
		policy:   policy.Config{TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		msg:      message{client: "10.1.2.3", host: "unknown", queueID: "4Q5", sender: "noc@acme-corp.example"},
		want:     act{"mail", 250, accept},
		entry:    Entry{QueueID: "4Q5", Stage: StageMail, Verdict: VerdictPass, ClientIP: netip.MustParseAddr("10.1.2.3"), Sender: "noc@acme-corp.example"},
		decision: decision{verdict: policy.Pass, trusted: policy.TrustNetwork},
	}, {
		name:     "untrusted network is checked",
		policy:   policy.Config{TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		msg:      message{client: "11.1.2.3", host: "unknown", queueID: "4Q6", sender: "noc@acme-corp.example"},
		want:     act{"mail", 550, "550 5.7.1 forged: our domain"},
		entry:    Entry{QueueID: "4Q6", Stage: StageMail, Verdict: VerdictReject, ClientIP: netip.MustParseAddr("11.1.2.3"), Sender: "noc@acme-corp.example"},
		decision: decision{verdict: policy.Reject, matched: "envelope:noc@acme-corp.example"},
	}, {
		name:     "look-up fault is a temporary failure",
		msg:      message{host: "localhost", queueID: "4Q7", sender: "fault@fault.example"},
		want:     act{"mail", 451, tempfail},
		entry:    Entry{QueueID: "4Q7", Stage: StageMail, Verdict: VerdictTempFail, ClientHost: "localhost", Sender: "fault@fault.example"},
		decision: decision{verdict: policy.TempFail},
		err:      errFake,
	}, {
		name:     "look-up fault with fail-open accepts",
		failOpen: true,
		msg:      message{host: "localhost", queueID: "4Q8", sender: "fault@fault.example"},
		want:     act{"mail", 250, accept},
		entry:    Entry{QueueID: "4Q8", Stage: StageMail, Verdict: VerdictFailOpen, ClientHost: "localhost", Sender: "fault@fault.example"},
		decision: decision{verdict: policy.TempFail},
		err:      errFake,
	}, {
		name:  "look-up panic is a temporary failure",
		msg:   message{host: "localhost", queueID: "4Q9", sender: "panic@fault.example"},
		want:  act{"mail", 451, tempfail},
		entry: Entry{QueueID: "4Q9", Stage: StageMail, Verdict: VerdictTempFail, ClientHost: "localhost", Sender: "panic@fault.example"},
		err:   &PanicError{Value: "boom"},
	}, {
		name:     "a fault in a header field is a temporary failure at the end of the header",
		msg:      message{client: "192.0.2.7", host: "unknown", queueID: "4QC", sender: "x@northwind-traders.example", rcpts: []string{"frontoffice@acme-corp.example"}, fields: [][2]string{{"From", " fault@fault.example"}, {"Sender", " ceo@acme-corp.example"}}},
		want:     act{"eoh", 451, tempfail},
		entry:    Entry{QueueID: "4QC", Stage: StageHeader, Verdict: VerdictTempFail, ClientIP: partner, Sender: "x@northwind-traders.example", Recipients: []string{"frontoffice@acme-corp.example"}},
		decision: decision{verdict: policy.TempFail},
		err:      errFake,
	}, {
		name:     "sender field over --max-field is a temporary failure",
		maxField: 64,
		msg:      message{client: "192.0.2.7", host: "unknown", queueID: "4QA", sender: "x@northwind-traders.example", rcpts: []string{"frontoffice@acme-corp.example"}, fields: [][2]string{{"Subject", " " + strings.Repeat("a", 100)}, {"From", " " + strings.Repeat("b", 70) + "@northwind-traders.example"}}},
		want:     act{"eoh", 451, tempfail},
		entry:    Entry{QueueID: "4QA", Stage: StageHeader, Verdict: VerdictTempFail, ClientIP: partner, Sender: "x@northwind-traders.example", Recipients: []string{"frontoffice@acme-corp.example"}},
		decision: decision{verdict: policy.TempFail},
		err:      header.ErrFieldTooLong,
	}, {
		name:     "null sender, From decides",
		msg:      message{client: "192.0.2.7", host: "unknown", queueID: "4QB", sender: "", rcpts: []string{"frontoffice@acme-corp.example"}, fields: [][2]string{{"From", " <ceo@acme-corp.example>"}}},
		want:     act{"eoh", 550, "550 5.7.1 forged: our domain"},
		entry:    Entry{QueueID: "4QB", Stage: StageHeader, Verdict: VerdictReject, ClientIP: partner, Sender: "", Recipients: []string{"frontoffice@acme-corp.example"}},
		decision: decision{verdict: policy.Reject, matched: "From:ceo@acme-corp.example"},
	}, {
		name:     "monitor mode passes and says so",
		policy:   policy.Config{Mode: policy.ModeMonitor},
		msg:      message{client: "192.0.2.7", host: "unknown", queueID: "4QD", sender: "noc@acme-corp.example", rcpts: []string{"frontoffice@acme-corp.example"}, fields: legit},
		want:     act{"eoh", 250, accept},
		entry:    Entry{QueueID: "4QD", Stage: StageHeader, Verdict: VerdictPass, ClientIP: partner, Sender: "noc@acme-corp.example", Recipients: []string{"frontoffice@acme-corp.example"}},
		decision: decision{verdict: policy.Pass, matched: "envelope:noc@acme-corp.example", would: true},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sink := &logSink{}
			cfg, _ := config(t, tc.policy)
			cfg.FailOpen, cfg.MaxField = tc.failOpen, tc.maxField
			cfg.Log = sink.log
			_, addr := startServer(t, cfg)
			got := send(t, addr, nil, tc.msg)
			if got != tc.want {
				t.Errorf("reply = %+v, want %+v", got, tc.want)
			}
			entries := sink.all()
			if len(entries) != 1 {
				t.Fatalf("log entries = %+v, want one", entries)
			}
			e := entries[0]
			if !errors.Is(e.Err, tc.err) && !reflect.DeepEqual(e.Err, tc.err) {
				t.Errorf("entry.Err = %v, want %v", e.Err, tc.err)
			}
			if got := decisionOf(e.Decision); got != tc.decision {
				t.Errorf("decision = %+v, want %+v", got, tc.decision)
			}
			e.Err, e.Decision, e.Session = nil, policy.Decision{}, ""
			if !reflect.DeepEqual(e, tc.entry) {
				t.Errorf("entry =\n%+v, want\n%+v", e, tc.entry)
			}
		})
	}
}

// TestFields: each header field, as the MTA delimits it, goes through header.Readings:
// values the MTA would never pass (an empty line inside, a bare CR starting a field) are
// read as a reader would, never turned back into a header that could end early.
func TestFields(t *testing.T) {
	cfg, _ := config(t, policy.Config{AllSenderFields: true})
	_, addr := startServer(t, cfg)
	ext := message{client: "192.0.2.7", host: "unknown", sender: "x@northwind-traders.example", rcpts: []string{"frontoffice@acme-corp.example"}}
	for _, tc := range []struct {
		name   string
		fields [][2]string
		code   uint16
	}{
		{"folded From", [][2]string{{"From", "  \"Sales\"\r\n <sales@northwind-traders.example>"}}, 250},
		{"folded forged From", [][2]string{{"From", " \"CEO\"\r\n <ceo@acme-corp.example>"}}, 550},
		{"bare CR starts a From in Subject", [][2]string{{"Subject", " a\rFrom: ceo@acme-corp.example"}}, 550},
		{"an empty line inside a value does not end the header", [][2]string{{"Subject", " a\n\n"}, {"From", " ceo@acme-corp.example"}}, 550},
		{"an empty line inside a name does not end the header", [][2]string{{"X\r\n\r\nY", " a"}, {"From", " ceo@acme-corp.example"}}, 550},
		{"name with a control byte", [][2]string{{"Fr\x01om", " ceo@acme-corp.example"}}, 550},
		{"name after a line end", [][2]string{{"X-A\nFrom", " ceo@acme-corp.example"}}, 550},
		{"Sender", [][2]string{{"From", " x@northwind-traders.example"}, {"Sender", " ceo@acme-corp.example"}}, 550},
		{"our address in To only", [][2]string{{"From", " x@northwind-traders.example"}, {"To", " ceo@acme-corp.example"}}, 250},
		{"the exception", [][2]string{{"From", " alerts@acme-corp.example"}}, 250},
		{"unqualified From is ours", [][2]string{{"From", " <ceo>"}}, 550},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ext
			m.fields = tc.fields
			if got := send(t, addr, nil, m); got.code != tc.code {
				t.Errorf("reply %+v, want %d", got, tc.code)
			}
		})
	}
}

// TestConnectionReuse sends three messages over one milter connection, as Postfix does for
// one SMTP session: nothing of one message leaks into the next.
func TestConnectionReuse(t *testing.T) {
	sink := &logSink{}
	cfg, _ := config(t, policy.Config{})
	cfg.Log = sink.log
	_, addr := startServer(t, cfg)
	bag := lib.NewMacroBag()
	s, err := lib.NewClient("tcp", addr).Session(bag)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msgs := []struct {
		msg  message
		want act
	}{
		{message{client: "192.0.2.7", host: "unknown", sender: "ceo@lure.example", rcpts: []string{"a@acme-corp.example"}, fields: [][2]string{{"From", " ceo@hq.acme-corp.example"}}}, act{"eoh", 550, "550 5.7.1 " + policy.DefaultReason}},
		{message{client: "192.0.2.7", host: "unknown", sender: "ok@lure.example", rcpts: []string{"b@acme-corp.example"}, fields: [][2]string{{"From", " ok@lure.example"}}}, act{"eoh", 250, accept}},
		{message{client: "192.0.2.7", host: "unknown", sender: "noc@acme-corp.example"}, act{"mail", 550, "550 5.7.1 forged: our domain"}},
	}
	for i, m := range msgs {
		if i > 0 {
			if err := s.Reset(bag); err != nil {
				t.Fatal(err)
			}
		}
		got, err := runMessage(s, m.msg)
		if err != nil {
			t.Fatal(err)
		}
		if got != m.want {
			t.Errorf("message %d: reply = %+v, want %+v", i, got, m.want)
		}
	}
	entries := sink.all()
	if len(entries) != 3 {
		t.Fatalf("log entries = %d, want 3", len(entries))
	}
	if got, want := entries[1].Recipients, []string{"b@acme-corp.example"}; !reflect.DeepEqual(got, want) {
		t.Errorf("second message recipients = %q, want %q", got, want)
	}
	if entries[1].Decision.FromCount != 1 {
		t.Errorf("second message: %d header addresses, want 1 (none of the first)", entries[1].Decision.FromCount)
	}
	if entries[0].Session == "" || entries[0].Session != entries[2].Session {
		t.Errorf("sessions %q %q %q: want one id for one connection", entries[0].Session, entries[1].Session, entries[2].Session)
	}
}

// TestShutdown: a message in flight gets its verdict, a new message is refused temporarily,
// and Shutdown returns once the in-flight message is done.
func TestShutdown(t *testing.T) {
	sink := &logSink{}
	cfg, r := config(t, policy.Config{})
	cfg.Log = sink.log
	srv, addr := startServer(t, cfg)

	// an idle connection: connected, no message
	idle, err := lib.NewClient("tcp", addr).Session(lib.NewMacroBag())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := idle.Conn("h", lib.FamilyInet, 25, "192.0.2.8"); err != nil {
		t.Fatal(err)
	}
	if _, err := idle.Helo("h"); err != nil {
		t.Fatal(err)
	}

	inflight := make(chan act, 1)
	go func() {
		defer close(inflight)
		s, err := lib.NewClient("tcp", addr).Session(lib.NewMacroBag())
		if err != nil {
			t.Errorf("in-flight session: %v", err)
			return
		}
		defer s.Close()
		a, err := runMessage(s, message{client: "192.0.2.7", host: "unknown", sender: "a@northwind-traders.example", rcpts: []string{"x@acme-corp.example"}, fields: [][2]string{{"From", " block@fault.example"}}})
		if err != nil {
			t.Errorf("in-flight message: %v", err)
		}
		inflight <- a
	}()
	select {
	case <-r.entered:
	case <-inflight:
		t.Fatal("the message ended before its header was judged")
	}

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	// Wait until Shutdown has marked the server closing: the idle connection's next
	// message is refused temporarily.
	var got *lib.Action
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		srv.mu.Lock()
		closing := srv.closing
		srv.mu.Unlock()
		if closing {
			got, err = idle.Mail("b@northwind-traders.example", "")
			break
		}
	}
	if err != nil || got == nil || got.SMTPCode != 451 {
		t.Errorf("new message during shutdown: %v %v, want 451", got, err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a message in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(r.release)
	if a := <-inflight; a != (act{"eoh", 250, accept}) {
		t.Errorf("in-flight message: %+v, want accept", a)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the in-flight message ended")
	}
	var verdicts []Verdict
	for _, e := range sink.all() {
		verdicts = append(verdicts, e.Verdict)
	}
	if want := []Verdict{VerdictTempFail, VerdictPass}; !reflect.DeepEqual(verdicts, want) {
		t.Errorf("verdicts = %v, want %v", verdicts, want)
	}
}

func TestShutdownContext(t *testing.T) {
	cfg, r := config(t, policy.Config{})
	srv, addr := startServer(t, cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		bag := lib.NewMacroBag()
		s, err := lib.NewClient("tcp", addr).Session(bag)
		if err != nil {
			return
		}
		defer s.Close()
		runMessage(s, message{client: "192.0.2.7", host: "unknown", sender: "a@b.example", rcpts: []string{"x@acme-corp.example"}, fields: [][2]string{{"From", " block@fault.example"}}})
	}()
	select {
	case <-r.entered:
	case <-done:
		t.Fatal("the message ended before its header was judged")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want %v", err, context.DeadlineExceeded)
	}
	close(r.release)
	<-done
}

// TestMTAHost: an unqualified address is qualified with the host the MTA names in macro j
// at connect (Config.DefaultHost is given it), as the MTA itself qualifies it.
func TestMTAHost(t *testing.T) {
	cfg, _ := config(t, policy.Config{})
	var seen []string
	var mu sync.Mutex
	cfg.DefaultHost = func(mta string) (string, error) {
		mu.Lock()
		seen = append(seen, mta)
		mu.Unlock()
		if mta == "" {
			return "fallback.example", nil
		}
		return mta, nil
	}
	_, addr := startServer(t, cfg)
	for _, tc := range []struct {
		j    string
		code uint16
	}{{"acme-corp.example", 550}, {"mx.northwind-traders.example", 250}, {"", 250}} {
		bag := lib.NewMacroBag()
		bag.Set(lib.MacroMTAFQDN, tc.j)
		s, err := lib.NewClient("tcp", addr).Session(bag)
		if err != nil {
			t.Fatal(err)
		}
		got, err := runMessage(s, message{client: "192.0.2.7", host: "unknown", sender: "x@northwind-traders.example",
			rcpts: []string{"frontoffice@acme-corp.example"}, fields: [][2]string{{"From", " <ceo>"}}})
		s.Close()
		if err != nil || got.code != tc.code {
			t.Errorf("j=%q: %+v %v, want %d", tc.j, got, err, tc.code)
		}
	}
	if want := []string{"acme-corp.example", "mx.northwind-traders.example", ""}; !reflect.DeepEqual(seen, want) {
		t.Errorf("DefaultHost saw %q, want %q", seen, want)
	}
}
