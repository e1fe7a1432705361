package qmail

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultControl is qmail's control directory as conf-qmail has it by default.
const DefaultControl = "/var/qmail/control"

// Control reads qmail's control files in Dir (DefaultControl when empty).
type Control struct{ Dir string }

func (c Control) dir() string {
	if c.Dir == "" {
		return DefaultControl
	}
	return c.Dir
}

// DefaultHost returns the host qmail adds to an unqualified address, as qmail-inject and
// qmail-send do: the first line of control/envnoathost, else of control/me. It is read
// only when such an address is seen.
func (c Control) DefaultHost() (string, error) {
	for _, name := range []string{"envnoathost", "me"} {
		b, err := os.ReadFile(filepath.Join(c.dir(), name))
		if err == nil {
			if h, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); strings.TrimSpace(h) != "" {
				return strings.TrimSpace(h), nil
			}
			continue
		}
		if !os.IsNotExist(err) {
			return "", err
		}
	}
	return "", fmt.Errorf("qmail: neither %s nor %s names a host", filepath.Join(c.dir(), "envnoathost"), filepath.Join(c.dir(), "me"))
}
