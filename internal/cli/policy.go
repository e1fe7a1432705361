package cli

import (
	"fmt"

	"block-forged-sender/internal/header"
	"block-forged-sender/internal/policy"
	"block-forged-sender/internal/rules"
)

// DefaultRules is where qmail's rules live by default.
const DefaultRules = "/var/qmail/control/badsenders"

// DefaultMaxField is the default --max-field.
const DefaultMaxField = header.DefaultMaxField

// Policy is the settings of every command that judges mail (the qmail modes, check and
// the milter), from flags and the environment.
type Policy struct {
	Rules        string
	Mode         string
	SenderFields bool
	MaxField     int
	Allow        []string // canonical patterns
	DefaultHost  string
	Syslog       bool
}

// Register adds the policy flags to fs, with rules as the --rules default.
func (p *Policy) Register(fs *FlagSet, rulesDefault string) {
	fs.StringVar(&p.Rules, "rules", rulesDefault, "the rules text `FILE`; its compiled form is FILE.cdb")
	fs.StringVar(&p.Mode, "mode", string(policy.ModeReject), "`MODE`: reject, or monitor: log what would be rejected and pass it (a fault still fails temporarily)")
	fs.BoolVar(&p.SenderFields, "sender-fields", true, "check Sender: and Resent-From: as well as From: (0 or false: From: only)")
	fs.IntVar(&p.MaxField, "max-field", DefaultMaxField, "largest sender header field held, in `BYTES`; a longer one is a temporary failure")
	fs.Func("allow", "`PATTERNS` this client may use as sender (user@host, @host, .host; comma or space separated)", func(s string) error {
		pats, err := rules.ParsePatterns(s)
		if err != nil {
			return err
		}
		p.Allow = append(p.Allow, pats...)
		return nil
	})
}

// RegisterSyslog adds --syslog, for the commands that log.
func (p *Policy) RegisterSyslog(fs *FlagSet) {
	fs.BoolVar(&p.Syslog, "syslog", false, "log to syslog (facility mail, tag bfs) instead of stderr")
}

// Check validates the settings after parsing.
func (p *Policy) Check(cmd string) error {
	if p.Mode != string(policy.ModeReject) && p.Mode != string(policy.ModeMonitor) {
		return &UsageError{fmt.Sprintf("%s: --mode %q: want reject or monitor", cmd, p.Mode)}
	}
	if p.MaxField <= 0 {
		return &UsageError{fmt.Sprintf("%s: --max-field %d: must be positive", cmd, p.MaxField)}
	}
	return nil
}

// Config returns the policy configuration; defaultHost qualifies unqualified addresses.
func (p *Policy) Config(defaultHost func() (string, error)) *policy.Config {
	return &policy.Config{
		Mode:            policy.Mode(p.Mode),
		Allow:           p.Allow,
		AllSenderFields: p.SenderFields,
		DefaultHost:     defaultHost,
	}
}

// HeaderOptions returns the header scanner's part of the settings.
func (p *Policy) HeaderOptions() header.Options {
	return header.Options{MaxField: p.MaxField, AllSenderFields: p.SenderFields}
}
