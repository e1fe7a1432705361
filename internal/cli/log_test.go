package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/rules"
)

// TestRecord: one schema for the qmail modes and the milter, the same names for the same
// things, durations in milliseconds, and what let a blocked address through named.
func TestRecord(t *testing.T) {
	block := &rules.Rule{File: "badsenders", Line: 1, Reason: "forged: ours"}
	except := &rules.Rule{File: "badsenders", Line: 3, Except: true}
	decided := &policy.Checked{Source: "From", Address: "ceo@ours.example", Match: rules.Match{Block: block}}
	excepted := &policy.Checked{Source: "envelope", Address: "alerts@ours.example", Match: rules.Match{Block: block, Except: except}}
	for _, tc := range []struct {
		name string
		r    Record
		want string
	}{
		{"qmail reject", Record{Verdict: "reject", Exit: 82, HasExit: true, Decision: &policy.Decision{Verdict: policy.Reject, Decider: decided, From: []string{"ceo@ours.example"}, FromCount: 1},
			Sender: "b@evil.example", HaveSender: true, Rcpts: []string{"a@ours.example"}, Client: "203.0.113.66", MsgID: "<1@evil.example>", Rules: "0123456789ab", Pid: 42, QmailPPID: "41", Size: 412, HasSize: true, Duration: 1234567 * time.Nanosecond},
			`verdict=reject exit=82 reason="forged: ours" rule=badsenders:1 matched=From:ceo@ours.example sender=b@evil.example from=ceo@ours.example rcpt=a@ours.example client=203.0.113.66 msgid=<1@evil.example> rules=0123456789ab pid=42 qmailppid=41 size=412 duration=1.234ms`},
		{"milter pass by an exception", Record{Session: "7", Queue: "4Q1", Stage: "header", Verdict: "pass", Decision: &policy.Decision{Verdict: policy.Pass, Excepted: excepted}, Sender: "alerts@ours.example", HaveSender: true, Duration: 310 * time.Microsecond},
			`session=7 queue=4Q1 verdict=pass stage=header excepted=badsenders:3 rule=badsenders:1 matched=envelope:alerts@ours.example sender=alerts@ours.example duration=0.310ms`},
		{"milter trusted, no queue id yet", Record{Session: "8", Stage: "mail", Verdict: "pass", Decision: &policy.Decision{Verdict: policy.Pass, Trusted: policy.TrustAuth}, Sender: "", HaveSender: true, Auth: "m.okafor"},
			`session=8 queue="" verdict=pass stage=mail trusted=auth sender=<> auth=m.okafor duration=0.000ms`},
		{"monitor", Record{Verdict: "pass", Exit: 0, HasExit: true, Mode: policy.ModeMonitor, Decision: &policy.Decision{Verdict: policy.Pass, WouldReject: true, Decider: decided}},
			`verdict=pass exit=0 mode=monitor monitor="would reject" reason="forged: ours" rule=badsenders:1 matched=From:ceo@ours.example duration=0.000ms`},
		{"tempfail", Record{Verdict: "tempfail", Exit: 55, HasExit: true, Err: errors.New("rules: no such file"), Warning: "w"},
			`verdict=tempfail exit=55 duration=0.000ms warning=w error="rules: no such file"`},
	} {
		var b strings.Builder
		lg := NewLogger(&b, false)
		tc.r.Log(lg)
		if got := strings.TrimSuffix(b.String(), "\n"); got != "block-forged-sender: "+tc.want {
			t.Errorf("%s:\n got %s\nwant block-forged-sender: %s", tc.name, got, tc.want)
		}
	}
}

func TestLevels(t *testing.T) {
	for _, tc := range []struct {
		r    Record
		want string
	}{
		{Record{Verdict: "pass"}, "INFO"},
		{Record{Verdict: "reject"}, "INFO+2"},
		{Record{Verdict: "tempfail", HasExit: true, Exit: 55}, "WARN"},
		{Record{Verdict: "failopen"}, "WARN"},
		{Record{Verdict: "tempfail", HasExit: true, Exit: 81}, "ERROR"},
	} {
		if got := tc.r.Level().String(); got != tc.want {
			t.Errorf("%+v: level %s, want %s", tc.r, got, tc.want)
		}
	}
}
