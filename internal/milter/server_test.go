package milter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	lib "github.com/d--j/go-milter"
)

// fakeDecider rejects our domain in the envelope sender and in any From line of the header,
// fails for the sender fault@fault.example and panics for panic@fault.example. It records
// every Input it sees (with Header copied).
type fakeDecider struct {
	mu     sync.Mutex
	inputs []Input
}

var errFake = errors.New("fake: lookup failed")

func (d *fakeDecider) Decide(in *Input) (Result, error) {
	cp := *in
	cp.Header = bytes.Clone(in.Header)
	cp.Recipients = append([]string(nil), in.Recipients...)
	d.mu.Lock()
	d.inputs = append(d.inputs, cp)
	d.mu.Unlock()
	switch in.Sender {
	case "fault@fault.example":
		return Result{}, errFake
	case "panic@fault.example":
		panic("boom")
	}
	if strings.HasSuffix(in.Sender, "@acme-corp.example") {
		return Result{Reject: true, Reason: "forged: our domain", Source: "envelope", Address: in.Sender, Rule: "badsenders:1"}, nil
	}
	if in.Stage == StageHeader {
		for _, line := range strings.Split(string(in.Header), "\r\n") {
			if strings.HasPrefix(line, "From:") && strings.Contains(line, "@acme-corp.example") {
				return Result{Reject: true, Source: "From", Address: strings.TrimSpace(line[5:]), Rule: "badsenders:2"}, nil
			}
		}
	}
	return Result{}, nil
}

func (d *fakeDecider) seen() []Input {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Input(nil), d.inputs...)
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

func TestVerdicts(t *testing.T) {
	legit := [][2]string{{"From", " Partner <sales@northwind-traders.example>"}, {"Subject", " hi"}}
	cases := []struct {
		name   string
		cfg    Config
		msg    message
		want   act
		stages []Stage // the Decider calls
		entry  Entry
	}{{
		name:   "legitimate",
		msg:    message{client: "192.0.2.7", host: "mx.northwind-traders.example", queueID: "4Q1", sender: "sales@northwind-traders.example", rcpts: []string{"frontoffice@acme-corp.example"}, fields: legit},
		want:   act{"eoh", 250, accept},
		stages: []Stage{StageMail, StageHeader},
		entry:  Entry{QueueID: "4Q1", Stage: StageHeader, Verdict: VerdictPass, ClientIP: netip.MustParseAddr("192.0.2.7"), ClientHost: "mx.northwind-traders.example", Sender: "sales@northwind-traders.example", Recipients: []string{"frontoffice@acme-corp.example"}},
	}, {
		name:   "envelope rejected at MAIL FROM",
		msg:    message{client: "192.0.2.7", host: "unknown", queueID: "4Q2", sender: "noc@acme-corp.example", rcpts: []string{"frontoffice@acme-corp.example"}, fields: legit},
		want:   act{"mail", 550, "550 5.7.1 forged: our domain"},
		stages: []Stage{StageMail},
		entry:  Entry{QueueID: "4Q2", Stage: StageMail, Verdict: VerdictReject, ClientIP: netip.MustParseAddr("192.0.2.7"), Sender: "noc@acme-corp.example", Result: Result{Reject: true, Reason: "forged: our domain", Source: "envelope", Address: "noc@acme-corp.example", Rule: "badsenders:1"}},
	}, {
		name:   "header From rejected at end of header, default reason",
		msg:    message{client: "2001:db8::1", host: "[2001:db8::1]", queueID: "4Q3", sender: "bounce@lure-mailer.example", rcpts: []string{"a@acme-corp.example", "b@acme-corp.example"}, fields: [][2]string{{"Subject", " x"}, {"From", " CEO <ceo@acme-corp.example>"}}},
		want:   act{"eoh", 550, "550 5.7.1 " + DefaultReason},
		stages: []Stage{StageMail, StageHeader},
		entry:  Entry{QueueID: "4Q3", Stage: StageHeader, Verdict: VerdictReject, ClientIP: netip.MustParseAddr("2001:db8::1"), Sender: "bounce@lure-mailer.example", Recipients: []string{"a@acme-corp.example", "b@acme-corp.example"}, Result: Result{Reject: true, Source: "From", Address: "CEO <ceo@acme-corp.example>", Rule: "badsenders:2"}},
	}, {
		name:  "authenticated session passes unchecked",
		msg:   message{client: "192.0.2.7", host: "unknown", auth: "alice", queueID: "4Q4", sender: "alice@acme-corp.example", fields: legit},
		want:  act{"mail", 250, accept},
		entry: Entry{QueueID: "4Q4", Stage: StageMail, Verdict: VerdictPass, Trusted: true, ClientIP: netip.MustParseAddr("192.0.2.7"), AuthUser: "alice", Sender: "alice@acme-corp.example"},
	}, {
		name:  "trusted network passes unchecked",
		cfg:   Config{TrustedNets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		msg:   message{client: "10.1.2.3", host: "unknown", queueID: "4Q5", sender: "noc@acme-corp.example"},
		want:  act{"mail", 250, accept},
		entry: Entry{QueueID: "4Q5", Stage: StageMail, Verdict: VerdictPass, Trusted: true, ClientIP: netip.MustParseAddr("10.1.2.3"), Sender: "noc@acme-corp.example"},
	}, {
		name:   "untrusted network is checked",
		cfg:    Config{TrustedNets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		msg:    message{client: "11.1.2.3", host: "unknown", queueID: "4Q6", sender: "noc@acme-corp.example"},
		want:   act{"mail", 550, "550 5.7.1 forged: our domain"},
		stages: []Stage{StageMail},
		entry:  Entry{QueueID: "4Q6", Stage: StageMail, Verdict: VerdictReject, ClientIP: netip.MustParseAddr("11.1.2.3"), Sender: "noc@acme-corp.example", Result: Result{Reject: true, Reason: "forged: our domain", Source: "envelope", Address: "noc@acme-corp.example", Rule: "badsenders:1"}},
	}, {
		name:   "decider fault is a temporary failure",
		msg:    message{host: "localhost", queueID: "4Q7", sender: "fault@fault.example"},
		want:   act{"mail", 451, tempfail},
		stages: []Stage{StageMail},
		entry:  Entry{QueueID: "4Q7", Stage: StageMail, Verdict: VerdictTempFail, ClientHost: "localhost", Sender: "fault@fault.example", Err: errFake},
	}, {
		name:   "decider fault with fail-open accepts",
		cfg:    Config{FailOpen: true},
		msg:    message{host: "localhost", queueID: "4Q8", sender: "fault@fault.example"},
		want:   act{"mail", 250, accept},
		stages: []Stage{StageMail},
		entry:  Entry{QueueID: "4Q8", Stage: StageMail, Verdict: VerdictFailOpen, ClientHost: "localhost", Sender: "fault@fault.example", Err: errFake},
	}, {
		name:   "decider panic is a temporary failure",
		msg:    message{host: "localhost", queueID: "4Q9", sender: "panic@fault.example"},
		want:   act{"mail", 451, tempfail},
		stages: []Stage{StageMail},
		entry:  Entry{QueueID: "4Q9", Stage: StageMail, Verdict: VerdictTempFail, ClientHost: "localhost", Sender: "panic@fault.example", Err: &PanicError{Value: "boom"}},
	}, {
		name:   "header over the cap is a temporary failure",
		cfg:    Config{MaxHeader: 64},
		msg:    message{client: "192.0.2.7", host: "unknown", queueID: "4QA", sender: "x@northwind-traders.example", rcpts: []string{"frontoffice@acme-corp.example"}, fields: [][2]string{{"Subject", " " + strings.Repeat("a", 40)}, {"From", " ceo@acme-corp.example"}}},
		want:   act{"eoh", 451, tempfail},
		stages: []Stage{StageMail},
		entry:  Entry{QueueID: "4QA", Stage: StageHeader, Verdict: VerdictTempFail, ClientIP: netip.MustParseAddr("192.0.2.7"), Sender: "x@northwind-traders.example", Recipients: []string{"frontoffice@acme-corp.example"}, Err: ErrHeaderTooLarge},
	}, {
		name:   "null sender, reason with control bytes made one line",
		msg:    message{client: "192.0.2.7", host: "unknown", queueID: "4QB", sender: "", rcpts: []string{"frontoffice@acme-corp.example"}, fields: [][2]string{{"From", " <ceo@acme-corp.example>"}}},
		want:   act{"eoh", 550, "550 5.7.1 " + DefaultReason},
		stages: []Stage{StageMail, StageHeader},
		entry:  Entry{QueueID: "4QB", Stage: StageHeader, Verdict: VerdictReject, ClientIP: netip.MustParseAddr("192.0.2.7"), Sender: "", Recipients: []string{"frontoffice@acme-corp.example"}, Result: Result{Reject: true, Source: "From", Address: "<ceo@acme-corp.example>", Rule: "badsenders:2"}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDecider{}
			sink := &logSink{}
			tc.cfg.Decider = d
			tc.cfg.Log = sink.log
			_, addr := startServer(t, tc.cfg)
			got := send(t, addr, nil, tc.msg)
			if got != tc.want {
				t.Errorf("reply = %+v, want %+v", got, tc.want)
			}
			var stages []Stage
			for _, in := range d.seen() {
				stages = append(stages, in.Stage)
			}
			if !reflect.DeepEqual(stages, tc.stages) {
				t.Errorf("Decide stages = %v, want %v", stages, tc.stages)
			}
			entries := sink.all()
			if len(entries) != 1 {
				t.Fatalf("log entries = %+v, want one", entries)
			}
			e := entries[0]
			if !errors.Is(e.Err, tc.entry.Err) && !reflect.DeepEqual(e.Err, tc.entry.Err) {
				t.Errorf("entry.Err = %v, want %v", e.Err, tc.entry.Err)
			}
			e.Err, tc.entry.Err = nil, nil
			if !reflect.DeepEqual(e, tc.entry) {
				t.Errorf("entry =\n%+v, want\n%+v", e, tc.entry)
			}
		})
	}
}

// TestInput checks what the Decider sees: the rebuilt header bytes, the client, the
// recipients, and the queue id that the MTA only gives at end of header.
func TestInput(t *testing.T) {
	d := &fakeDecider{}
	_, addr := startServer(t, Config{Decider: d})
	msg := message{
		client: "192.0.2.7", host: "mx.northwind-traders.example", sender: "sales@northwind-traders.example",
		rcpts: []string{"a@acme-corp.example", "b@acme-corp.example"},
		fields: [][2]string{
			{"Received", " from x\n\tby y"},
			{"From", "  \"Sales\"\r\n <sales@northwind-traders.example>"},
			{"X-Empty", ""},
			{"Subject", " a\rFrom: ceo@acme-corp.example"},
		},
	}
	// The queue id arrives with the EOH macros only, as Postfix sends {i} before the queue
	// file exists: the StageMail input has none.
	bag := lib.NewMacroBag()
	s, err := lib.NewClient("tcp", addr).Session(bag)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bag.Set(lib.MacroQueueId, "")
	bag.Set(lib.MacroMTAFQDN, "mx.acme-corp.example")
	if _, err := s.Conn(msg.host, lib.FamilyInet, 25, msg.client); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Helo("h"); err != nil {
		t.Fatal(err)
	}
	if a, err := s.Mail(msg.sender, "SIZE=100"); err != nil || a.Type != lib.ActionContinue {
		t.Fatalf("mail: %v %v", a, err)
	}
	for _, r := range msg.rcpts {
		if _, err := s.Rcpt(r, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DataStart(); err != nil {
		t.Fatal(err)
	}
	for _, f := range msg.fields {
		if _, err := s.HeaderField(f[0], f[1], nil); err != nil {
			t.Fatal(err)
		}
	}
	bag.Set(lib.MacroQueueId, "4QEOH")
	if a, err := s.HeaderEnd(); err != nil || a.Type != lib.ActionAccept {
		t.Fatalf("eoh: %v %v", a, err)
	}
	want := []Input{{
		Stage: StageMail, ClientIP: netip.MustParseAddr("192.0.2.7"), ClientHost: "mx.northwind-traders.example",
		MTAHost: "mx.acme-corp.example", Sender: "sales@northwind-traders.example",
	}, {
		Stage: StageHeader, QueueID: "4QEOH", ClientIP: netip.MustParseAddr("192.0.2.7"), ClientHost: "mx.northwind-traders.example",
		MTAHost: "mx.acme-corp.example", Sender: "sales@northwind-traders.example", Recipients: []string{"a@acme-corp.example", "b@acme-corp.example"},
		Header: []byte("Received: from x\n\tby y\r\n" +
			"From:  \"Sales\"\r\n <sales@northwind-traders.example>\r\n" +
			"X-Empty:\r\n" +
			"Subject: a\rFrom: ceo@acme-corp.example\r\n" +
			"\r\n"),
	}}
	got := d.seen()
	for i := range got {
		if got[i].Recipients == nil {
			got[i].Recipients = nil
		}
		if len(got[i].Recipients) == 0 {
			got[i].Recipients = nil
		}
		if len(got[i].Header) == 0 {
			got[i].Header = nil
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("inputs =\n%+v\nwant\n%+v", got, want)
		if len(got) == 2 {
			t.Errorf("header = %q\nwant %q", got[1].Header, want[1].Header)
		}
	}
}

// TestConnectionReuse sends three messages over one milter connection, as Postfix does for
// one SMTP session: nothing of one message leaks into the next.
func TestConnectionReuse(t *testing.T) {
	d := &fakeDecider{}
	sink := &logSink{}
	_, addr := startServer(t, Config{Decider: d, Log: sink.log})
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
		{message{client: "192.0.2.7", host: "unknown", sender: "ceo@lure.example", rcpts: []string{"a@acme-corp.example"}, fields: [][2]string{{"From", " ceo@acme-corp.example"}}}, act{"eoh", 550, "550 5.7.1 " + DefaultReason}},
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
	in := d.seen()
	if len(in) != 5 {
		t.Fatalf("Decide calls = %d, want 5", len(in))
	}
	if got, want := string(in[3].Header), "From: ok@lure.example\r\n\r\n"; got != want {
		t.Errorf("second message header = %q, want %q", got, want)
	}
	if got, want := in[3].Recipients, []string{"b@acme-corp.example"}; !reflect.DeepEqual(got, want) {
		t.Errorf("second message recipients = %q, want %q", got, want)
	}
	if got := len(sink.all()); got != 3 {
		t.Errorf("log entries = %d, want 3", got)
	}
}

// blockingDecider holds every StageHeader decision until release is closed.
type blockingDecider struct {
	entered chan struct{}
	release chan struct{}
}

func (d *blockingDecider) Decide(in *Input) (Result, error) {
	if in.Stage == StageHeader {
		d.entered <- struct{}{}
		<-d.release
	}
	return Result{}, nil
}

// TestShutdown: a message in flight gets its verdict, a new message is refused temporarily,
// and Shutdown returns once the in-flight message is done.
func TestShutdown(t *testing.T) {
	d := &blockingDecider{entered: make(chan struct{}), release: make(chan struct{})}
	sink := &logSink{}
	srv, addr := startServer(t, Config{Decider: d, Log: sink.log})

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
		a, err := runMessage(s, message{client: "192.0.2.7", host: "unknown", sender: "a@northwind-traders.example", rcpts: []string{"x@acme-corp.example"}, fields: [][2]string{{"From", " a@northwind-traders.example"}}})
		if err != nil {
			t.Errorf("in-flight message: %v", err)
		}
		inflight <- a
	}()
	select {
	case <-d.entered:
	case <-inflight:
		t.Fatal("the message ended before its header decision")
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
	close(d.release)
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
	d := &blockingDecider{entered: make(chan struct{}), release: make(chan struct{})}
	srv, addr := startServer(t, Config{Decider: d})
	done := make(chan struct{})
	go func() {
		defer close(done)
		bag := lib.NewMacroBag()
		s, err := lib.NewClient("tcp", addr).Session(bag)
		if err != nil {
			return
		}
		defer s.Close()
		runMessage(s, message{client: "192.0.2.7", host: "unknown", sender: "a@b.example", rcpts: []string{"x@acme-corp.example"}, fields: [][2]string{{"From", " a@b.example"}}})
	}()
	select {
	case <-d.entered:
	case <-done:
		t.Fatal("the message ended before its header decision")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want %v", err, context.DeadlineExceeded)
	}
	close(d.release)
	<-done
}
