package readers

import (
	"bytes"
	"io"
	"strings"

	"block-forged-sender/internal/header"
	"block-forged-sender/internal/policy"
)

// ours is the filter's reading of one message.
type ours struct {
	cands    []string // the canonical form of every header address looked up
	complete bool     // the decision could be made (else the filter fails temporarily)
	refused  string   // the address that refuses the message, "" for a pass
}

// ourReading is the one place the harness asks the filter about a message, through the
// pipeline the qmail modes run: header.Scan with Sender and Resent-From and the
// Content-Type charsets, each reading judged by policy.Judge against the world's rules,
// from an untrusted client with the null sender and no recipients. An unqualified
// address is qualified with the world's host, as the policy does; its bare local part is
// listed too, as readers show it.
func ourReading(w *world, msg []byte) ours {
	j := policy.NewJudge(&policy.Config{
		Mode:            policy.ModeReject,
		AllSenderFields: true,
		DefaultHost:     func() (string, error) { return w.host, nil },
		Explain:         true,
	}, policy.Client{})
	j.Use(w.set)
	opt := header.Options{AllSenderFields: true, Info: func(name string, value []byte) {
		if name == "Content-Type" {
			j.ContentType(value)
		}
	}}
	_, err := header.Scan(bytes.NewReader(msg), io.Discard, opt, j.Field)
	j.HeaderDone(err)
	j.Sender("")
	j.Recipients(nil)
	d := j.Decide()
	var o ours
	o.complete = d.Verdict != policy.TempFail
	if d.Verdict == policy.Reject {
		o.refused = d.Decider.Canonical
	}
	for _, c := range d.Checked {
		o.cands = append(o.cands, c.Canonical)
		if local, ok := strings.CutSuffix(c.Address, "@"+w.host); ok && !strings.Contains(local, "@") {
			o.cands = append(o.cands, strings.ToLower(local))
		}
	}
	return o
}
