package milter

import (
	"io"
	"net"
	"syscall"
	"testing"
)

// quickAckOn reads TCP_QUICKACK on c: 1 while the kernel acknowledges at once, 0 in its
// delayed-ACK (pingpong) mode.
func quickAckOn(t *testing.T, c net.Conn) int {
	t.Helper()
	var tc *net.TCPConn
	switch c := c.(type) {
	case *quickAckConn:
		tc = c.TCPConn
	case *net.TCPConn:
		tc = c
	default:
		t.Fatalf("accepted a %T", c)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	v := -1
	raw.Control(func(fd uintptr) {
		v, err = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK)
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// pingPong has the client send a byte and the server answer one, n times, the exchange that
// puts the server's kernel into delayed-ACK mode, and returns TCP_QUICKACK on the server's
// side after each of the server's reads.
func pingPong(t *testing.T, ln net.Listener, n int) []int {
	t.Helper()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	var got []int
	buf := make([]byte, 1)
	for range n {
		if _, err := client.Write([]byte{'p'}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(server, buf); err != nil {
			t.Fatal(err)
		}
		got = append(got, quickAckOn(t, server))
		if _, err := server.Write([]byte{'q'}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(client, buf); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// TestListenQuickAck: a connection from a TCP listener of Listen is out of delayed-ACK mode
// after every read, however many request-reply exchanges came before (after which the
// kernel delays ACKs by itself: the plain listener shows it), and a unix listener is left
// as it is.
func TestListenQuickAck(t *testing.T) {
	ln, err := Listen("inet:0@127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for i, v := range pingPong(t, ln, 5) {
		if v != 1 {
			t.Errorf("read %d: TCP_QUICKACK %d, want 1", i, v)
		}
	}

	plain, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	// The control: without the wrapper the kernel is in delayed-ACK mode by the last read,
	// so the check above can fail.
	if got := pingPong(t, plain, 5); got[len(got)-1] != 0 {
		t.Errorf("plain listener: TCP_QUICKACK after each read %v, want 0 at the end", got)
	}

	ul, err := Listen("unix:" + t.TempDir() + "/m.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	if _, ok := ul.(*net.UnixListener); !ok {
		t.Errorf("unix listener wrapped: %T", ul)
	}
}
