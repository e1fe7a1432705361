package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	lib "github.com/d--j/go-milter"

	"block-forged-sender/internal/milter"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/testenv"
)

// milterDaemon is the built program running "milter" on a unix socket.
type milterDaemon struct {
	socket  string
	metrics string // host:port of --metrics-listen
	log     string // path of its stderr
	cmd     *exec.Cmd
}

// startMilterDaemon runs the program's milter command with rules and args on a fresh unix
// socket, with metrics on a free loopback port; the test's cleanup stops it with SIGTERM.
func startMilterDaemon(t testing.TB, rules string, args ...string) *milterDaemon {
	t.Helper()
	dir := t.TempDir()
	rf := filepath.Join(dir, "badsenders")
	if err := os.WriteFile(rf, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := ln.Addr().String()
	ln.Close()
	d := &milterDaemon{socket: filepath.Join(dir, "milter.sock"), metrics: metrics, log: filepath.Join(dir, "log")}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command(filepath.Join(binDir, "block-forged-sender"), append([]string{"milter",
		"--listen", "unix:" + d.socket, "--rules", rf, "--metrics-listen", metrics, "--default-host", "acme-corp.example"}, args...)...)
	d.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("milter daemon exit: %v", err)
			}
		case <-time.After(30 * time.Second):
			d.cmd.Process.Kill()
			t.Errorf("milter daemon ignored SIGTERM")
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c, err := net.Dial("unix", d.socket)
		if err == nil {
			c.Close()
			if c, err := net.Dial("tcp", metrics); err == nil {
				c.Close()
				return d
			}
		}
		select {
		case err := <-done:
			done <- err
			b, _ := os.ReadFile(d.log)
			t.Fatalf("milter daemon exited: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(d.log)
			t.Fatalf("milter daemon does not listen:\n%s", b)
		}
	}
}

func (d *milterDaemon) logText(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(d.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// milterMsg is one SMTP transaction as Postfix hands it to a milter.
type milterMsg struct {
	client  string // client IP
	auth    string // {auth_authen}
	queueID string // {i}
	sender  string
	rcpts   []string
	fields  [][2]string // name, value as Postfix passes it (leading space kept)
}

// milterReply is the milter's final answer for a message: at which step, and the SMTP reply
// Postfix would give ("" for accept/continue).
type milterReply struct {
	step  string // "mail", "eoh" or "eom"
	code  uint16
	reply string
}

// runMilterMsg sends msg over one new milter connection to the daemon.
func runMilterMsg(s *lib.ClientSession, bag *lib.MacroBag, msg milterMsg) (milterReply, error) {
	bag.Set(lib.MacroQueueId, msg.queueID)
	bag.Set(lib.MacroAuthAuthen, msg.auth)
	if a, err := s.Conn("client.example", lib.FamilyInet, 25, msg.client); err != nil || a.Type != lib.ActionContinue {
		return milterReply{}, fmt.Errorf("conn: %+v %v", a, err)
	}
	if a, err := s.Helo("client.example"); err != nil || a.Type != lib.ActionContinue {
		return milterReply{}, fmt.Errorf("helo: %+v %v", a, err)
	}
	a, err := s.Mail(msg.sender, "") // the client adds the angle brackets
	if err != nil {
		return milterReply{}, err
	}
	if a.Type != lib.ActionContinue {
		return milterReply{"mail", a.SMTPCode, a.SMTPReply}, nil
	}
	for _, r := range msg.rcpts {
		if a, err := s.Rcpt(r, ""); err != nil || a.Type != lib.ActionContinue {
			return milterReply{}, fmt.Errorf("rcpt: %+v %v", a, err)
		}
	}
	if a, err := s.DataStart(); err != nil || a.Type != lib.ActionContinue {
		return milterReply{}, fmt.Errorf("data: %+v %v", a, err)
	}
	for _, f := range msg.fields {
		if a, err := s.HeaderField(f[0], f[1], nil); err != nil || a.Type != lib.ActionContinue {
			return milterReply{}, fmt.Errorf("header: %+v %v", a, err)
		}
	}
	if a, err = s.HeaderEnd(); err != nil {
		return milterReply{}, err
	}
	if a.Type != lib.ActionContinue {
		return milterReply{"eoh", a.SMTPCode, a.SMTPReply}, nil
	}
	if _, a, err = s.End(); err != nil {
		return milterReply{}, err
	}
	return milterReply{"eom", a.SMTPCode, a.SMTPReply}, nil
}

// sendMilter runs msg through a new milter connection to d, as Postfix would.
func sendMilter(t testing.TB, d *milterDaemon, msg milterMsg) milterReply {
	t.Helper()
	bag := lib.NewMacroBag()
	s, err := lib.NewClient("unix", d.socket).Session(bag)
	if err != nil {
		t.Fatalf("milter session: %v", err)
	}
	defer s.Close()
	got, err := runMilterMsg(s, bag, msg)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

const milterRules = `@acme-corp.example	forged sender: acme-corp.example used from outside
@customer.example	forged sender: customer.example used from outside
!@customer.example rcpt=@customer.example	customer mail to the customer's own desk
@junk.example
`

var (
	accepted = milterReply{"eoh", 250, "250 accept"}
	tempFail = milterReply{"eoh", 451, "451 4.7.1 temporary failure in the sender check, try again later"}
)

func partnerFields(from string) [][2]string {
	return [][2]string{
		{"Received", " from mx.northwind-traders.example\n\tby mx.acme-corp.example (Postfix) with ESMTP id 4Q1"},
		{"From", " " + from},
		{"To", " frontoffice@acme-corp.example"},
		{"Subject", " figures"},
	}
}

// TestMilterDaemon drives the real daemon with a milter client for its exact replies.
func TestMilterDaemon(t *testing.T) {
	rcpt := []string{"frontoffice@acme-corp.example"}
	big := [][2]string{{"From", " " + strings.Repeat("x", 200) + " <sales@northwind-traders.example>"}}
	cases := []struct {
		name string
		args []string
		msg  milterMsg
		want milterReply
		log  string // the daemon's log line for the message, up to duration=
	}{{
		name: "envelope forged: 550 at MAIL FROM",
		msg:  milterMsg{client: "192.0.2.7", queueID: "Q1", sender: "noc@acme-corp.example", rcpts: rcpt, fields: partnerFields("x@northwind-traders.example")},
		want: milterReply{"mail", 550, "550 5.7.1 forged sender: acme-corp.example used from outside"},
		log:  `queue=Q1 verdict=reject stage=mail reason="forged sender: acme-corp.example used from outside" rule=RULES:1 matched=envelope:noc@acme-corp.example sender=noc@acme-corp.example client=192.0.2.7 host=client.example`,
	}, {
		name: "header From forged: 550 at end of header",
		msg:  milterMsg{client: "192.0.2.7", queueID: "Q2", sender: "bounce@lure-mailer.example", rcpts: rcpt, fields: partnerFields("=?utf-8?q?CEO?= <ceo@ACME-corp.example.>")},
		want: milterReply{"eoh", 550, "550 5.7.1 forged sender: acme-corp.example used from outside"},
		log:  `queue=Q2 verdict=reject stage=header reason="forged sender: acme-corp.example used from outside" rule=RULES:1 matched=From:ceo@ACME-corp.example. sender=bounce@lure-mailer.example from=ceo@ACME-corp.example. rcpt=frontoffice@acme-corp.example client=192.0.2.7 host=client.example`,
	}, {
		name: "rule without a reason",
		msg:  milterMsg{client: "192.0.2.7", queueID: "Q3", sender: "promo@junk.example", rcpts: rcpt},
		want: milterReply{"mail", 550, "550 5.7.1 sender address rejected"},
		log:  `queue=Q3 verdict=reject stage=mail reason="sender address rejected" rule=RULES:4 matched=envelope:promo@junk.example sender=promo@junk.example client=192.0.2.7 host=client.example`,
	}, {
		name: "legitimate: accepted at end of header",
		msg:  milterMsg{client: "192.0.2.7", queueID: "Q4", sender: "sales@northwind-traders.example", rcpts: rcpt, fields: partnerFields("Sales <sales@northwind-traders.example>")},
		want: accepted,
		log:  `queue=Q4 verdict=pass stage=header sender=sales@northwind-traders.example from=sales@northwind-traders.example rcpt=frontoffice@acme-corp.example client=192.0.2.7 host=client.example`,
	}, {
		name: "trusted network passes unchecked",
		args: []string{"--trusted-networks", "10.0.0.0/8, 192.0.2.99"},
		msg:  milterMsg{client: "10.1.2.3", queueID: "Q5", sender: "noc@acme-corp.example", rcpts: rcpt, fields: partnerFields("ceo@acme-corp.example")},
		want: milterReply{"mail", 250, "250 accept"},
		log:  `queue=Q5 verdict=pass stage=mail trusted=network sender=noc@acme-corp.example client=10.1.2.3 host=client.example`,
	}, {
		name: "a single trusted address",
		args: []string{"--trusted-networks", "10.0.0.0/8, 192.0.2.99"},
		msg:  milterMsg{client: "192.0.2.99", queueID: "Q6", sender: "noc@acme-corp.example", rcpts: rcpt},
		want: milterReply{"mail", 250, "250 accept"},
		log:  `queue=Q6 verdict=pass stage=mail trusted=network sender=noc@acme-corp.example client=192.0.2.99 host=client.example`,
	}, {
		name: "untrusted neighbour is checked",
		args: []string{"--trusted-networks", "10.0.0.0/8, 192.0.2.99"},
		msg:  milterMsg{client: "192.0.2.98", queueID: "Q7", sender: "noc@acme-corp.example", rcpts: rcpt},
		want: milterReply{"mail", 550, "550 5.7.1 forged sender: acme-corp.example used from outside"},
		log:  `queue=Q7 verdict=reject stage=mail`,
	}, {
		name: "authenticated session passes unchecked",
		msg:  milterMsg{client: "192.0.2.7", auth: "m.okafor", queueID: "Q8", sender: "m.okafor@acme-corp.example", rcpts: rcpt, fields: partnerFields("m.okafor@acme-corp.example")},
		want: milterReply{"mail", 250, "250 accept"},
		log:  `queue=Q8 verdict=pass stage=mail trusted=auth sender=m.okafor@acme-corp.example client=192.0.2.7 host=client.example auth=m.okafor`,
	}, {
		name: "monitor mode logs and accepts",
		args: []string{"--mode", "monitor"},
		msg:  milterMsg{client: "192.0.2.7", queueID: "Q9", sender: "bounce@lure-mailer.example", rcpts: rcpt, fields: partnerFields("ceo@acme-corp.example")},
		want: accepted,
		log:  `queue=Q9 verdict=pass stage=header mode=monitor monitor="would reject" reason="forged sender: acme-corp.example used from outside" rule=RULES:1 matched=From:ceo@acme-corp.example sender=bounce@lure-mailer.example`,
	}, {
		name: "rcpt exception: passes MAIL FROM, holds for its recipients",
		msg:  milterMsg{client: "192.0.2.7", queueID: "QA", sender: "billing@customer.example", rcpts: []string{"desk@customer.example"}, fields: partnerFields("billing@customer.example")},
		want: accepted,
		log:  `queue=QA verdict=pass stage=header excepted=RULES:3 rule=RULES:2 matched=envelope:billing@customer.example sender=billing@customer.example from=billing@customer.example rcpt=desk@customer.example`,
	}, {
		name: "rcpt exception: other recipients, rejected at end of header",
		msg:  milterMsg{client: "192.0.2.7", queueID: "QB", sender: "billing@customer.example", rcpts: []string{"desk@customer.example", "frontoffice@acme-corp.example"}, fields: partnerFields("x@northwind-traders.example")},
		want: milterReply{"eoh", 550, "550 5.7.1 forged sender: customer.example used from outside"},
		log:  `queue=QB verdict=reject stage=header reason="forged sender: customer.example used from outside" rule=RULES:2 matched=envelope:billing@customer.example`,
	}, {
		// Postfix and Sendmail never pass a value holding an empty line; were one to, the
		// fields after it must still be checked.
		name: "an empty line inside a field value does not end the header",
		msg:  milterMsg{client: "192.0.2.7", queueID: "QE", sender: "bounce@lure-mailer.example", rcpts: rcpt, fields: [][2]string{{"Subject", " a\n\n"}, {"From", " CEO <ceo@acme-corp.example>"}}},
		want: milterReply{"eoh", 550, "550 5.7.1 forged sender: acme-corp.example used from outside"},
		log:  `queue=QE verdict=reject stage=header reason="forged sender: acme-corp.example used from outside" rule=RULES:1 matched=From:ceo@acme-corp.example`,
	}, {
		// Stored as passed, the empty line ends the header for every reader: what follows
		// it, in the value and after it, is body, where no reader shows a sender.
		name: "a From after an empty line inside a value is body",
		msg:  milterMsg{client: "192.0.2.7", queueID: "QF", sender: "bounce@lure-mailer.example", rcpts: rcpt, fields: [][2]string{{"Subject", " a\n\r\nFrom: ceo@acme-corp.example"}, {"From", " Mallory <mallory@lure-mailer.example>"}}},
		want: accepted,
		log:  `queue=QF verdict=pass stage=header sender=bounce@lure-mailer.example from=mallory@lure-mailer.example`,
	}, {
		name: "a From after a bare CR inside a value is read as a field",
		msg:  milterMsg{client: "192.0.2.7", queueID: "QH", sender: "bounce@lure-mailer.example", rcpts: rcpt, fields: [][2]string{{"Subject", " a\rFrom: ceo@acme-corp.example"}, {"From", " Mallory <mallory@lure-mailer.example>"}}},
		want: milterReply{"eoh", 550, "550 5.7.1 forged sender: acme-corp.example used from outside"},
		log:  `queue=QH verdict=reject stage=header reason="forged sender: acme-corp.example used from outside" rule=RULES:1 matched=From:ceo@acme-corp.example`,
	}, {
		name: "nor does an empty line in a field name",
		msg:  milterMsg{client: "192.0.2.7", queueID: "QG", sender: "bounce@lure-mailer.example", rcpts: rcpt, fields: [][2]string{{"\n", " a"}, {"X\r\n\r\nY", " b"}, {"From", " CEO <ceo@acme-corp.example>"}}},
		want: milterReply{"eoh", 550, "550 5.7.1 forged sender: acme-corp.example used from outside"},
		log:  `queue=QG verdict=reject stage=header reason="forged sender: acme-corp.example used from outside" rule=RULES:1 matched=From:ceo@acme-corp.example`,
	}, {
		name: "header over --max-field: 451",
		args: []string{"--max-field", "128"},
		msg:  milterMsg{client: "192.0.2.7", queueID: "QC", sender: "sales@northwind-traders.example", rcpts: rcpt, fields: big},
		want: tempFail,
		log:  `queue=QC verdict=tempfail stage=header sender=sales@northwind-traders.example rcpt=frontoffice@acme-corp.example client=192.0.2.7 host=client.example duration=`,
	}, {
		name: "header over --max-field with --fail-open: accepted",
		args: []string{"--max-field", "128", "--fail-open"},
		msg:  milterMsg{client: "192.0.2.7", queueID: "QD", sender: "sales@northwind-traders.example", rcpts: rcpt, fields: big},
		want: accepted,
		log:  `queue=QD verdict=failopen stage=header sender=sales@northwind-traders.example`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := startMilterDaemon(t, milterRules, tc.args...)
			if got := sendMilter(t, d, tc.msg); got != tc.want {
				t.Errorf("reply = %+v, want %+v", got, tc.want)
			}
			want := "block-forged-sender: " + strings.ReplaceAll(tc.log, "RULES", filepath.Join(filepath.Dir(d.socket), "badsenders"))
			var found string
			for deadline := time.Now().Add(5 * time.Second); found == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				for _, l := range strings.Split(d.logText(t), "\n") {
					// Every line of a milter connection has its session id.
					if strings.HasPrefix(l, "block-forged-sender: session=") && hasFields(l, want) {
						found = l
					}
				}
			}
			if found == "" {
				t.Errorf("no log line starting %q in:\n%s", want, d.logText(t))
			}
		})
	}
}

// TestMilterDaemonMetrics: the metrics endpoint counts the messages by verdict and reason.
func TestMilterDaemonMetrics(t *testing.T) {
	d := startMilterDaemon(t, milterRules, "--trusted-networks", "10.0.0.0/8")
	rcpt := []string{"frontoffice@acme-corp.example"}
	msgs := []milterMsg{
		{client: "192.0.2.7", sender: "noc@acme-corp.example", rcpts: rcpt},
		{client: "192.0.2.7", sender: "x@lure-mailer.example", rcpts: rcpt, fields: partnerFields("ceo@acme-corp.example")},
		{client: "192.0.2.7", sender: "promo@junk.example", rcpts: rcpt},
		{client: "192.0.2.7", sender: "sales@northwind-traders.example", rcpts: rcpt, fields: partnerFields("sales@northwind-traders.example")},
		{client: "10.0.0.1", sender: "noc@acme-corp.example", rcpts: rcpt},
	}
	// All five over one milter connection, as Postfix sends the messages of one session.
	bag := lib.NewMacroBag()
	s, err := lib.NewClient("unix", d.socket).Session(bag)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, m := range msgs {
		if i > 0 {
			if err := s.Reset(bag); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := runMilterMsg(s, bag, m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	resp, err := http.Get("http://" + d.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{
		`bfs_milter_messages_total{verdict="pass",reason=""} 1` + "\n",
		`bfs_milter_messages_total{verdict="pass",reason="trusted"} 1` + "\n",
		`bfs_milter_messages_total{verdict="reject",reason="forged sender: acme-corp.example used from outside"} 2` + "\n",
		`bfs_milter_messages_total{verdict="reject",reason="sender address rejected"} 1` + "\n",
		"bfs_milter_message_seconds_count 5\n",
		`bfs_milter_message_seconds_bucket{le="+Inf"} 5` + "\n",
		// One batch of look-ups at MAIL FROM, one per header field, one at the end of the
		// header: 1 + 6 + 1 + 6 + 0 (trusted clients are not looked up).
		"bfs_milter_decide_seconds_count 14\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	// The rules version, to compare across hosts, as every log line has it too.
	if m := regexp.MustCompile(`(?m)^bfs_milter_rules_info\{version="([0-9a-f]{12})"\} 1$`).FindStringSubmatch(text); m == nil {
		t.Errorf("metrics lack bfs_milter_rules_info:\n%s", text)
	} else if !strings.Contains(d.logText(t), " rules="+m[1]+" ") {
		t.Errorf("log lines lack rules=%s:\n%s", m[1], d.logText(t))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
}

// hasFields is [testenv.HasLogFields].
func hasFields(line, want string) bool { return testenv.HasLogFields(line, want) }

// TestEntryRecordAddresses: the envelope addresses Postfix and Sendmail pass in angle
// brackets are logged as the qmail modes log them.
func TestEntryRecordAddresses(t *testing.T) {
	r := entryRecord(milter.Entry{Sender: "<bounce@lure-mailer.example>", Recipients: []string{"<a@acme-corp.example>", "b@acme-corp.example"}}, policy.ModeReject)
	if r.Sender != "bounce@lure-mailer.example" || strings.Join(r.Rcpts, " ") != "a@acme-corp.example b@acme-corp.example" {
		t.Errorf("sender %q, rcpts %q", r.Sender, r.Rcpts)
	}
	if r := entryRecord(milter.Entry{Sender: "<>"}, policy.ModeReject); r.Sender != "" || !r.HaveSender {
		t.Errorf("the null sender: %q (%v), want \"\", logged as <>", r.Sender, r.HaveSender)
	}
}
