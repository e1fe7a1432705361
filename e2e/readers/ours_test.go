package readers

import (
	"bytes"
	"io"
	"regexp"
	"strings"

	"block-forged-sender/internal/address"
	"block-forged-sender/internal/header"
	"block-forged-sender/internal/rules"
)

// ourCandidates is the one place the harness asks the filter for its reading of a
// message: the canonical form of every header sender candidate, as the policy looks them
// up (header.Scan with Sender and Resent-From, address.CandidatesMax, Address.Canonical;
// the way cmd/block-forged-sender/message.go scanHeader collects them). An unqualified
// candidate is returned without a domain. A message whose candidates could not all be
// collected (a field over the cap, too many candidates) returns ok false: the filter fails
// temporarily then, which never passes the message.
func ourCandidates(msg []byte) (cands []string, ok bool) {
	return candidatesWithCharset(msg, "")
}

// candidatesWithCharset is ourCandidates with the charset hint of
// address.CandidatesCharset: what the filter reads once the header readings pass it the
// message's declared charset (handed to the lead; until then only the harness calls it).
func candidatesWithCharset(msg []byte, charset string) (cands []string, ok bool) {
	ok = true
	var addrs []address.Address
	seen := map[string]bool{}
	_, err := header.Scan(bytes.NewReader(msg), io.Discard, header.Options{AllSenderFields: true}, func(f header.Field) error {
		var aerr error
		addrs, aerr = address.CandidatesCharset(addrs[:0], f.Value, charset, address.MaxCandidates)
		if aerr != nil {
			ok = false
		}
		for _, a := range addrs {
			if c := a.Canonical(); !seen[c] {
				seen[c] = true
				cands = append(cands, c)
			}
		}
		return nil
	})
	if err != nil {
		ok = false
	}
	return cands, ok
}

var contentTypeCharset = regexp.MustCompile(`(?im)^content-type[ \t]*:[^\n]*?;[ \t]*charset[ \t]*=[ \t]*"?([^"; \t\r\n]+)`)

// declaredCharset is the charset parameter of the message's top-level Content-Type field,
// or "" (the harness's own reading: unfolded lines, first match).
func declaredCharset(msg []byte) string {
	head := msg
	if i := bytes.Index(head, []byte("\n\n")); i >= 0 {
		head = head[:i]
	}
	head = bytes.ReplaceAll(bytes.ReplaceAll(head, []byte("\r\n"), []byte("\n")), []byte("\n "), []byte(" "))
	if m := contentTypeCharset.FindSubmatch(head); m != nil {
		return string(m[1])
	}
	return ""
}

// ourRefusal returns the first of cands that the rules set blocks (an unqualified one
// qualified with host first, as the policy does), or "".
func ourRefusal(set *rules.Set, cands []string, host string) (string, error) {
	for _, c := range cands {
		if !strings.Contains(c, "@") {
			c += "@" + host
		}
		m, err := set.Lookup(c, rules.Scope{})
		if err != nil {
			return "", err
		}
		if m.Blocked() {
			return c, nil
		}
	}
	return "", nil
}
