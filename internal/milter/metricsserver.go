package milter

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Serve answers HTTP requests for the metrics page (GET /metrics) on ln until ln is
// closed. It is a minimal HTTP/1.0 server for this one page: the qmail modes share the
// binary and start once per message, and net/http's package initialisation alone would
// cost each of them a tenth of a millisecond.
func (m *Metrics) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go m.serveConn(c)
	}
}

// serveConn answers one request and closes the connection.
func (m *Metrics) serveConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(io.LimitReader(c, 16<<10))
	request, err := br.ReadString('\n')
	if err != nil {
		return
	}
	for { // the request's header fields: read and ignored
		l, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimRight(l, "\r\n") == "" {
			break
		}
	}
	var body bytes.Buffer
	status := "200 OK"
	f := strings.Fields(request)
	switch {
	case len(f) != 3 || !strings.HasPrefix(f[2], "HTTP/"):
		status = "400 Bad Request"
	case f[0] != "GET" && f[0] != "HEAD":
		status = "405 Method Not Allowed"
	case strings.SplitN(f[1], "?", 2)[0] != "/metrics":
		status = "404 Not Found"
	default:
		m.WriteText(&body)
	}
	fmt.Fprintf(c, "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", status, body.Len())
	if len(f) == 0 || f[0] != "HEAD" {
		c.Write(body.Bytes())
	}
}
