package policy

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"block-forged-sender/internal/address"
	"block-forged-sender/internal/rules"
)

const testRules = `@ours.example	forged: ours.example used from outside
.ours.example
!alerts@ours.example	monitoring service
!@customer.example rcpt=@customer.example client=192.0.2.0/24	billing provider
@customer.example	forged customer
`

func loadRules(t *testing.T) *rules.Set {
	t.Helper()
	p := filepath.Join(t.TempDir(), "badsenders")
	if err := os.WriteFile(p, []byte(testRules), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _, err := rules.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func addr(s string) address.Address {
	a, err := address.ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

func from(addrs ...string) []Candidate {
	var c []Candidate
	for _, a := range addrs {
		c = append(c, Candidate{Source: "From", Addr: addr(a)})
	}
	return c
}

func TestDecide(t *testing.T) {
	set := loadRules(t)
	host := func(h string) func() (string, error) { return func() (string, error) { return h, nil } }
	tests := []struct {
		name    string
		in      Input
		verdict Verdict
		decider string // Source:Address of the decider, on reject
		line    int    // line of the deciding rule
		checked []string
		reason  string
	}{
		{"external sender and From", Input{Sender: addr("a@partner.example"), Headers: from("A@Partner.example", "b@partner.example")},
			Pass, "", 0, []string{"envelope:a@partner.example", "From:b@partner.example"}, ""},
		{"our From", Input{Sender: addr("a@partner.example"), Headers: from("ceo@ours.example")},
			Reject, "From:ceo@ours.example", 1, []string{"envelope:a@partner.example", "From:ceo@ours.example"}, "forged: ours.example used from outside"},
		{"our envelope", Input{Sender: addr("CEO@OURS.example."), Headers: from("x@partner.example")},
			Reject, "envelope:CEO@OURS.example.", 1, []string{"envelope:CEO@OURS.example.", "From:x@partner.example"}, "forged: ours.example used from outside"},
		{"subdomain rule without a reason", Input{NullSender: true, Headers: from("x@hq.ours.example")},
			Reject, "From:x@hq.ours.example", 2, []string{"From:x@hq.ours.example"}, "sender address rejected"},
		{"first blocked address decides", Input{NullSender: true, Headers: from("alerts@ours.example", "x@hq.ours.example", "y@ours.example")},
			Reject, "From:x@hq.ours.example", 2, []string{"From:alerts@ours.example", "From:x@hq.ours.example", "From:y@ours.example"}, "sender address rejected"},
		{"null sender alone", Input{NullSender: true}, Pass, "", 0, nil, ""},
		{"the exception", Input{Sender: addr("alerts@ours.example"), Headers: from("alerts@ours.example")},
			Pass, "", 0, []string{"envelope:alerts@ours.example"}, ""},
		{"trusted client", Input{Sender: addr("ceo@ours.example"), Trusted: "relayclient"}, Pass, "", 0, nil, ""},
		{"allowed for this client", Input{Sender: addr("ceo@ours.example"), Allow: []string{"@ours.example"}},
			Pass, "", 0, []string{"envelope:ceo@ours.example"}, ""},
		{"allowed another address only", Input{Sender: addr("ceo@ours.example"), Allow: []string{"cfo@ours.example"}},
			Reject, "envelope:ceo@ours.example", 1, []string{"envelope:ceo@ours.example"}, "forged: ours.example used from outside"},
		{"unqualified sender is qualified", Input{Sender: addr("ceo"), DefaultHost: host("Ours.Example")},
			Reject, "envelope:ceo@Ours.Example", 1, []string{"envelope:ceo@Ours.Example"}, "forged: ours.example used from outside"},
		{"unqualified From is qualified", Input{NullSender: true, Headers: from("<ceo>"), DefaultHost: host("mx.partner.example")},
			Pass, "", 0, []string{"From:ceo@mx.partner.example"}, ""},
		{"scoped exception in scope", Input{Sender: addr("inv@customer.example"), Recipients: []string{"a@customer.example"},
			Client: rules.Scope{ClientIP: netip.MustParseAddr("192.0.2.9")}}, Pass, "", 0, []string{"envelope:inv@customer.example"}, ""},
		{"scoped exception, client out of scope", Input{Sender: addr("inv@customer.example"), Recipients: []string{"a@customer.example"},
			Client: rules.Scope{ClientIP: netip.MustParseAddr("198.51.100.1")}}, Reject, "envelope:inv@customer.example", 5, []string{"envelope:inv@customer.example"}, "forged customer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(tt.in, set)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			var checked []string
			for _, c := range d.Checked {
				checked = append(checked, c.Source+":"+c.Address)
			}
			if d.Verdict != tt.verdict || d.Reason() != tt.reason || len(checked) != len(tt.checked) {
				t.Fatalf("Decide = %s %q checked %q; want %s %q checked %q", d.Verdict, d.Reason(), checked, tt.verdict, tt.reason, tt.checked)
			}
			for i := range checked {
				if checked[i] != tt.checked[i] {
					t.Errorf("checked[%d] = %q, want %q", i, checked[i], tt.checked[i])
				}
			}
			if tt.verdict == Reject {
				if got := d.Decider.Source + ":" + d.Decider.Address; got != tt.decider || d.Rule().Line != tt.line {
					t.Errorf("decider %s (line %d), want %s (line %d)", got, d.Rule().Line, tt.decider, tt.line)
				}
			} else if d.Decider != nil || d.Rule() != nil {
				t.Errorf("a pass with a decider: %+v", d.Decider)
			}
		})
	}
}

func TestDecideErrors(t *testing.T) {
	set := loadRules(t)
	if _, err := Decide(Input{Sender: addr("ceo")}, set); !errors.Is(err, ErrNoDefaultHost) {
		t.Errorf("unqualified sender without DefaultHost: %v, want ErrNoDefaultHost", err)
	}
	boom := errors.New("no control/me")
	if _, err := Decide(Input{Sender: addr("ceo"), DefaultHost: func() (string, error) { return "", boom }}, set); !errors.Is(err, ErrNoDefaultHost) {
		t.Errorf("DefaultHost failing: %v, want ErrNoDefaultHost", err)
	}
	closed := loadRules(t)
	closed.Close()
	if d, err := Decide(Input{Sender: addr("a@partner.example")}, closed); err == nil {
		t.Errorf("a failing look-up gave %+v and no error", d)
	}
}
