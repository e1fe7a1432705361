package milter

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// Listen opens the listener named by spec, in the socket syntax of Sendmail and Postfix:
//
//	unix:/path/to/socket   (also local:/path)
//	inet:PORT@HOST         (Sendmail), inet:HOST:PORT (Postfix), inet:PORT (every address)
//	inet6:PORT@HOST        IPv6
//
// A stale unix socket (a socket file nobody answers on) is removed first; a live one is an
// error, so a second daemon cannot steal the first one's socket.
//
// On TCP, every accepted connection acknowledges what it reads at once (see [QuickAck]):
// without that, a message through Postfix over TCP waits about 40 ms for a delayed ACK.
func Listen(spec string) (net.Listener, error) {
	network, addr, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		removeStale(addr)
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("milter: listen %s: %w", spec, err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(true)
		return ul, nil
	}
	return QuickAck(ln), nil
}

// ParseSpec turns a socket spec (see [Listen]) into a network and address for net.Listen.
func ParseSpec(spec string) (network, addr string, err error) {
	kind, rest, ok := strings.Cut(spec, ":")
	if !ok || rest == "" {
		return "", "", fmt.Errorf("milter: bad socket %q: want unix:PATH or inet:PORT@HOST", spec)
	}
	switch kind {
	case "unix", "local":
		return "unix", rest, nil
	case "inet", "inet6":
		network = "tcp4"
		if kind == "inet6" {
			network = "tcp6"
		}
		var host, port string
		if p, h, ok := strings.Cut(rest, "@"); ok {
			port, host = p, h
		} else if h, p, err := net.SplitHostPort(rest); err == nil {
			host, port = h, p
		} else {
			port = rest
		}
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return "", "", fmt.Errorf("milter: bad port in socket %q", spec)
		}
		return network, net.JoinHostPort(strings.Trim(host, "[]"), port), nil
	}
	return "", "", fmt.Errorf("milter: bad socket %q: unknown kind %q", spec, kind)
}

func removeStale(path string) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		os.Remove(path)
	}
}
