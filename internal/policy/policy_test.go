package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"block-forged-sender/internal/header"
	"block-forged-sender/internal/rules"
)

const testRules = `@ours.example	forged: ours.example used from outside
.ours.example
!alerts@ours.example	monitoring service
!@customer.example rcpt=@customer.example client=192.0.2.0/24	billing provider
@customer.example	forged customer
`

func loadRules(t testing.TB) *rules.Set {
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

func host(h string) func() (string, error) { return func() (string, error) { return h, nil } }

// msg is one message as a test gives it to a Judge.
type msg struct {
	sender string   // "" for <>
	rcpts  []string // nil: never given
	from   []string // From field values
	client Client
}

// judge feeds m to a new Judge in the order given ("srh": sender, recipients, header) and
// returns its decision.
func judge(t testing.TB, cfg *Config, l Lookuper, m msg, order string) Decision {
	t.Helper()
	j := NewJudge(cfg, m.client)
	if j.Trusted() == "" {
		j.Use(l)
	}
	for _, step := range order {
		switch step {
		case 's':
			j.Sender(m.sender)
		case 'r':
			if m.rcpts != nil {
				j.Recipients(m.rcpts)
			}
		case 'h':
			for _, v := range m.from {
				if err := j.Field(header.Reading{Name: "From", Value: []byte(v)}); err != nil {
					break
				}
			}
			j.HeaderDone(nil)
		}
	}
	return j.Decide()
}

func TestJudge(t *testing.T) {
	set := loadRules(t)
	cfg := &Config{DefaultHost: host("Ours.Example"), Explain: true}
	rcpt := []string{"frontoffice@ours.example"}
	tests := []struct {
		name    string
		cfg     *Config
		m       msg
		verdict Verdict
		decider string // Source:Address of the decider
		line    int    // line of the deciding rule
		checked []string
		reason  string
	}{
		{"external sender and From", nil, msg{sender: "a@partner.example", rcpts: rcpt, from: []string{"A@Partner.example, b@partner.example"}},
			Pass, "", 0, []string{"envelope:a@partner.example", "From:A@Partner.example", "From:b@partner.example"}, ""},
		{"our From", nil, msg{sender: "a@partner.example", rcpts: rcpt, from: []string{"ceo@ours.example"}},
			Reject, "From:ceo@ours.example", 1, []string{"envelope:a@partner.example", "From:ceo@ours.example"}, "forged: ours.example used from outside"},
		{"our envelope", nil, msg{sender: "CEO@OURS.example.", rcpts: rcpt, from: []string{"x@partner.example"}},
			Reject, "envelope:CEO@OURS.example.", 1, []string{"envelope:CEO@OURS.example.", "From:x@partner.example"}, "forged: ours.example used from outside"},
		{"envelope decides over From", nil, msg{sender: "a@hq.ours.example", rcpts: rcpt, from: []string{"ceo@ours.example"}},
			Reject, "envelope:a@hq.ours.example", 2, []string{"envelope:a@hq.ours.example", "From:ceo@ours.example"}, DefaultReason},
		{"subdomain rule without a reason", nil, msg{rcpts: rcpt, from: []string{"x@hq.ours.example"}},
			Reject, "From:x@hq.ours.example", 2, []string{"From:x@hq.ours.example"}, DefaultReason},
		{"first blocked address decides", nil, msg{rcpts: rcpt, from: []string{"alerts@ours.example, x@hq.ours.example", "y@ours.example"}},
			Reject, "From:x@hq.ours.example", 2, []string{"From:alerts@ours.example", "From:x@hq.ours.example", "From:y@ours.example"}, DefaultReason},
		{"null sender alone", nil, msg{rcpts: rcpt}, Pass, "", 0, nil, ""},
		{"the exception", nil, msg{sender: "alerts@ours.example", rcpts: rcpt, from: []string{"alerts@ours.example"}},
			Pass, "", 0, []string{"envelope:alerts@ours.example", "From:alerts@ours.example"}, ""},
		{"relay client", nil, msg{sender: "ceo@ours.example", client: Client{RelayClient: true}}, Pass, "", 0, nil, ""},
		{"relay client ignored", &Config{IgnoreRelayClient: true}, msg{sender: "ceo@ours.example", rcpts: rcpt, client: Client{RelayClient: true}},
			Reject, "envelope:ceo@ours.example", 1, nil, "forged: ours.example used from outside"},
		{"allowed for this client", &Config{Allow: []string{"@ours.example"}, Explain: true}, msg{sender: "ceo@ours.example", rcpts: rcpt},
			Pass, "", 0, []string{"envelope:ceo@ours.example"}, ""},
		{"allowed another address only", &Config{Allow: []string{"cfo@ours.example"}, Explain: true}, msg{sender: "ceo@ours.example", rcpts: rcpt},
			Reject, "envelope:ceo@ours.example", 1, []string{"envelope:ceo@ours.example"}, "forged: ours.example used from outside"},
		{"unqualified sender is qualified", nil, msg{sender: "ceo", rcpts: rcpt},
			Reject, "envelope:ceo@Ours.Example", 1, []string{"envelope:ceo@Ours.Example"}, "forged: ours.example used from outside"},
		{"unqualified From is qualified", &Config{DefaultHost: host("mx.partner.example"), Explain: true}, msg{rcpts: rcpt, from: []string{"<ceo>"}},
			Pass, "", 0, []string{"From:ceo@mx.partner.example"}, ""},
		{"scoped exception in scope", nil, msg{sender: "inv@customer.example", rcpts: []string{"a@customer.example"},
			client: Client{IP: netip.MustParseAddr("192.0.2.9")}}, Pass, "", 0, []string{"envelope:inv@customer.example"}, ""},
		{"scoped exception, client out of scope", nil, msg{sender: "inv@customer.example", rcpts: []string{"a@customer.example"},
			client: Client{IP: netip.MustParseAddr("198.51.100.1")}}, Reject, "envelope:inv@customer.example", 5, []string{"envelope:inv@customer.example"}, "forged customer"},
		{"scoped exception, recipient out of scope", nil, msg{sender: "inv@customer.example", rcpts: []string{"a@customer.example", "b@ours.example"},
			client: Client{IP: netip.MustParseAddr("192.0.2.9")}}, Reject, "envelope:inv@customer.example", 5, []string{"envelope:inv@customer.example"}, "forged customer"},
		{"scoped exception in the header, recipient out of scope", nil, msg{rcpts: []string{"b@ours.example"}, from: []string{"inv@customer.example"},
			client: Client{IP: netip.MustParseAddr("192.0.2.9")}}, Reject, "From:inv@customer.example", 5, []string{"From:inv@customer.example"}, "forged customer"},
		{"monitor mode", &Config{Mode: ModeMonitor}, msg{sender: "ceo@ours.example", rcpts: rcpt}, Pass, "envelope:ceo@ours.example", 1, nil, ""},
	}
	for _, tt := range tests {
		c := tt.cfg
		if c == nil {
			c = cfg
		}
		// Every order the callers use: qmail env and milter (sender, recipients, header),
		// queue mode (header, then the envelope), check.
		for _, order := range []string{"srh", "hsr", "shr", "rsh"} {
			t.Run(tt.name+"/"+order, func(t *testing.T) {
				d := judge(t, c, set, tt.m, order)
				var checked []string
				for _, ch := range d.Checked {
					checked = append(checked, ch.Source+":"+ch.Address)
				}
				if d.Verdict != tt.verdict || d.Err != nil {
					t.Fatalf("verdict %s (%v), want %s", d.Verdict, d.Err, tt.verdict)
				}
				if tt.decider != "" {
					if d.Decider == nil {
						t.Fatalf("no decider, want %s", tt.decider)
					}
					if got := d.Decider.Source + ":" + d.Decider.Address; got != tt.decider || d.Rule().Line != tt.line {
						t.Errorf("decider %s (line %d), want %s (line %d)", got, d.Rule().Line, tt.decider, tt.line)
					}
					if d.WouldReject != (c.Mode == ModeMonitor) {
						t.Errorf("WouldReject = %v in mode %q", d.WouldReject, c.Mode)
					}
				} else if d.Decider != nil {
					t.Errorf("a pass with a decider: %+v", d.Decider)
				}
				if tt.verdict == Reject && d.Reason() != tt.reason {
					t.Errorf("reason %q, want %q", d.Reason(), tt.reason)
				}
				if c.Explain && order == "srh" && fmt.Sprint(checked) != fmt.Sprint(tt.checked) {
					t.Errorf("checked %q, want %q", checked, tt.checked)
				}
			})
		}
	}
}

// TestJudgeIncomplete: a verdict is Pass only when the sender, the recipients (if an
// exception needs them) and the whole header have been seen.
func TestJudgeIncomplete(t *testing.T) {
	set := loadRules(t)
	cfg := &Config{DefaultHost: host("ours.example")}
	newJudge := func(c Client) *Judge { j := NewJudge(cfg, c); j.Use(set); return j }

	j := newJudge(Client{})
	j.Sender("a@partner.example")
	if d := j.Decide(); d.Verdict != Pending {
		t.Errorf("sender only: %s, want pending", d.Verdict)
	}
	j.HeaderDone(nil)
	if d := j.Decide(); d.Verdict != Pass {
		t.Errorf("sender and header: %s, want pass", d.Verdict)
	}

	j = newJudge(Client{})
	j.HeaderDone(nil)
	if d := j.Decide(); d.Verdict != Pending {
		t.Errorf("header without a sender: %s, want pending", d.Verdict)
	}

	// An exception scoped to recipients: not a pass until the recipients are known.
	j = newJudge(Client{IP: netip.MustParseAddr("192.0.2.9")})
	j.Sender("inv@customer.example")
	j.HeaderDone(nil)
	if d := j.Decide(); d.Verdict != Pending {
		t.Errorf("rcpt-scoped exception, recipients unknown: %s, want pending", d.Verdict)
	}
	j.Recipients([]string{"ap@customer.example"})
	if d := j.Decide(); d.Verdict != Pass || d.Excepted == nil || d.Excepted.Match.Except.Line != 4 {
		t.Errorf("recipients in scope: %s excepted %+v, want pass by line 4", d.Verdict, d.Excepted)
	}

	// A blocked address is a reject at once (the milter at MAIL FROM).
	j = newJudge(Client{})
	j.Sender("ceo@ours.example")
	if d := j.Decide(); d.Verdict != Reject {
		t.Errorf("blocked sender at MAIL FROM: %s, want reject", d.Verdict)
	}

	// A fault: never a pass, even with the rest complete.
	j = newJudge(Client{})
	j.Sender("a@partner.example")
	j.Recipients([]string{"x@ours.example"})
	j.HeaderDone(header.ErrFieldTooLong)
	if d := j.Decide(); d.Verdict != TempFail || !errors.Is(d.Err, header.ErrFieldTooLong) {
		t.Errorf("header over the limit: %s %v, want tempfail", d.Verdict, d.Err)
	}
}

func TestJudgeErrors(t *testing.T) {
	set := loadRules(t)
	boom := errors.New("no control/me")
	for _, tc := range []struct {
		name string
		cfg  *Config
		l    Lookuper
		want error
	}{
		{"unqualified sender without DefaultHost", &Config{}, set, ErrNoDefaultHost},
		{"DefaultHost failing", &Config{DefaultHost: func() (string, error) { return "", boom }}, set, ErrNoDefaultHost},
		{"DefaultHost empty", &Config{DefaultHost: host("")}, set, ErrNoDefaultHost},
		{"no rules", &Config{DefaultHost: host("x")}, nil, ErrNoRules},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := NewJudge(tc.cfg, Client{})
			if tc.l != nil {
				j.Use(tc.l)
			}
			j.Sender("ceo")
			j.HeaderDone(nil)
			if d := j.Decide(); d.Verdict != TempFail || !errors.Is(d.Err, tc.want) {
				t.Errorf("Decide = %s %v, want tempfail %v", d.Verdict, d.Err, tc.want)
			}
		})
	}
	closed := loadRules(t)
	closed.Close()
	j := NewJudge(&Config{}, Client{})
	j.Use(closed)
	j.Sender("a@partner.example")
	if err := j.Field(header.Reading{Name: "From", Value: []byte("b@partner.example")}); err == nil {
		t.Error("Field after a failed look-up gave no error")
	}
	j.HeaderDone(nil)
	if d := j.Decide(); d.Verdict != TempFail {
		t.Errorf("a failing look-up gave %s", d.Verdict)
	}
}

// TestJudgeManyMailboxes: a From with thousands of mailboxes is judged in full, each
// address once: the blocked one at the end decides.
func TestJudgeManyMailboxes(t *testing.T) {
	set := loadRules(t)
	var b strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&b, "user%d@partner.example, ", i)
	}
	b.WriteString("ceo@ours.example")
	j := NewJudge(&Config{}, Client{})
	j.Use(set)
	j.Sender("")
	j.Recipients([]string{"x@ours.example"})
	if err := j.Field(header.Reading{Name: "From", Value: []byte(b.String())}); err != nil {
		t.Fatal(err)
	}
	j.HeaderDone(nil)
	d := j.Decide()
	if d.Verdict != Reject || d.Decider.Address != "ceo@ours.example" || d.FromCount != 5001 || len(d.From) != maxFrom {
		t.Errorf("Decide = %s %+v, %d addresses (%d kept)", d.Verdict, d.Decider, d.FromCount, len(d.From))
	}
}

func TestTrust(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		cfg    Config
		client Client
		want   string
	}{
		{Config{}, Client{}, ""},
		{Config{}, Client{RelayClient: true}, TrustRelayClient},
		{Config{IgnoreRelayClient: true}, Client{RelayClient: true}, ""},
		{Config{IgnoreRelayClient: true}, Client{RelayClient: true, Trusted: true}, TrustConfigured},
		{Config{}, Client{AuthUser: "m.okafor"}, TrustAuth},
		{Config{TrustedNetworks: nets}, Client{IP: netip.MustParseAddr("10.1.2.3")}, TrustNetwork},
		{Config{TrustedNetworks: nets}, Client{IP: netip.MustParseAddr("::ffff:10.1.2.3")}, TrustNetwork},
		{Config{TrustedNetworks: nets}, Client{IP: netip.MustParseAddr("192.0.2.1")}, ""},
	} {
		if got := NewJudge(&tc.cfg, tc.client).Trusted(); got != tc.want {
			t.Errorf("Trusted(%+v, %+v) = %q, want %q", tc.cfg, tc.client, got, tc.want)
		}
	}
}

// TestJudgeCharset: raw 8-bit bytes in a sender field are read in the charset a
// Content-Type field before it declares, and in the fallback charsets whatever it says.
func TestJudgeCharset(t *testing.T) {
	set := loadRules(t)
	ebcdic := "\x83\x85\x96\x7c\x96\xa4\x99\xa2\x4b\x85\xa7\x81\x94\x97\x93\x85" // ceo@ours.example in IBM037
	tests := []struct {
		name        string
		contentType string // "" for none
		before      bool   // the Content-Type field comes before the From field
		from        string
		verdict     Verdict
	}{
		{"declared before", "text/plain; charset=IBM037", true, ebcdic, Reject},
		{"declared, folded, RFC 2231", "text/plain;\r\n\tcharset*=us-ascii'en'ibm037", true, ebcdic, Reject},
		{"declared after", "text/plain; charset=IBM037", false, ebcdic, Pass},
		{"not declared", "", true, ebcdic, Pass},
		{"Shift_JIS full-width at, not declared", "", true, "\"ceo\x81\x97ours.example\" <x@partner.example>", Reject},
		{"Shift_JIS full-width at, declared otherwise", "text/plain; charset=koi8-r", true, "ceo\x81\x97ours.example", Reject},
		{"Latin-1 name", "text/plain; charset=iso-8859-1", true, "Ren\xe9 <rene@partner.example>", Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := NewJudge(&Config{DefaultHost: host("mx.partner.example")}, Client{})
			j.Use(set)
			j.Sender("x@partner.example")
			j.Recipients([]string{"frontoffice@ours.example"})
			if tt.contentType != "" && tt.before {
				j.ContentType([]byte(tt.contentType))
			}
			if err := j.Field(header.Reading{Name: "From", Value: []byte(tt.from)}); err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" && !tt.before {
				j.ContentType([]byte(tt.contentType))
			}
			j.HeaderDone(nil)
			if d := j.Decide(); d.Verdict != tt.verdict {
				t.Errorf("verdict %s, want %s", d.Verdict, tt.verdict)
			}
		})
	}
}

func TestContentTypeCharset(t *testing.T) {
	for in, want := range map[string]string{
		"text/plain; charset=Shift_JIS":                   "Shift_JIS",
		"text/plain;charset=\"gb2312\"; format=flowed":    "gb2312",
		"multipart/mixed; boundary=\"x\"; CHARSET = big5": "big5",
		"text/plain;\r\n charset=\r\n euc-kr":             "euc-kr",
		"text/plain; charset*=utf-8'en'koi8-r":            "koi8-r",
		"text/plain; format=flowed":                       "",
		"text/plain":                                      "",
		"text/plain; charset":                             "",
	} {
		if got := contentTypeCharset([]byte(in)); got != want {
			t.Errorf("contentTypeCharset(%q) = %q, want %q", in, got, want)
		}
	}
}
