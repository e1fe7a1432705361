// Command gen writes the benchmark suite's inputs, deterministically, so that nothing large
// is kept in the repository: a message of any size (streamed), a rules list of any length,
// a qmail-queue envelope, and the cdbmake input holding every record of a compiled CDB.
//
//	gen message SIZE     a message of exactly SIZE bytes (SIZE >= 2048) on stdout
//	gen rules N          a rules list of N entries on stdout
//	gen envelope         the message's envelope in qmail-queue form on stdout
//	gen records FILE.cdb cdbmake input for every record of FILE.cdb, in file order
//
// The message passes the generated rules: its envelope sender and From: are on no list, so
// the filter does its whole work (scan, look-ups, copy) for every byte.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"block-forged-sender/internal/cdb"
)

const usage = "usage: gen message SIZE | gen rules N | gen envelope | gen records FILE.cdb\n"

// Sender and Recipient of the generated message's envelope.
const (
	Sender    = "priya.raman@northwind-traders.example"
	Recipient = "frontoffice@acme-corp.example"
)

// header is the generated message's header: what qmail-smtpd would hand over after a
// relay, with a folded From: and a Sender:.
const header = "Received: (qmail 4242 invoked from network); 3 Oct 2024 16:45:11 -0000\n" +
	"Received: from out.northwind-traders.example (HELO out.northwind-traders.example) (198.51.100.25)\n" +
	"  by mail.acme-corp.example with ESMTPS (TLS_AES_256_GCM_SHA384); 3 Oct 2024 16:45:11 -0000\n" +
	"Received: from relay1.northwind-traders.example (relay1.northwind-traders.example [198.51.100.31])\n" +
	"\tby out.northwind-traders.example (Postfix) with ESMTPS id 4XK00042Z\n" +
	"\tfor <frontoffice@acme-corp.example>; Thu, 3 Oct 2024 18:45:10 +0200 (CEST)\n" +
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=northwind-traders.example;\n" +
	"\ts=sel2024; t=1727973910; h=from:to:subject:date:message-id:mime-version;\n" +
	"\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n" +
	"\tb=Zm9yZ2VkIHNlbmRlcnMgYXJlIHJlZnVzZWQgYXQgdGhlIGRvb3IsIGxlZ2l0aW1hdGUgbWFp\n" +
	"\t bCBwYXNzZXMgYnl0ZSBmb3IgYnl0ZSB1bmNoYW5nZWQsIGFuZCBmYXN0Lg==\n" +
	"Message-ID: <20241003164510.4242@out.northwind-traders.example>\n" +
	"Date: Thu, 03 Oct 2024 18:45:10 +0200\n" +
	"From: \"Priya Raman (Northwind Traders, accounts)\"\n" +
	"\t<priya.raman@northwind-traders.example>\n" +
	"Sender: accounts@northwind-traders.example\n" +
	"To: Front Office <frontoffice@acme-corp.example>\n" +
	"Subject: =?UTF-8?Q?Delivery_schedule_October_=E2=80=93_updated?=\n" +
	"MIME-Version: 1.0\n" +
	"Content-Type: text/plain; charset=utf-8\n" +
	"Content-Transfer-Encoding: 8bit\n" +
	"\n"

// bodyLine is one line of the body; the body repeats it.
const bodyLine = "Please find the delivery schedule for October below; quantities in units.\n"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "gen: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	w := bufio.NewWriterSize(stdout, 1<<16)
	var err error
	switch {
	case args[0] == "message" && len(args) == 2:
		var size int64
		size, err = strconv.ParseInt(args[1], 10, 64)
		if err == nil {
			err = Message(w, size)
		}
	case args[0] == "rules" && len(args) == 2:
		var n int
		n, err = strconv.Atoi(args[1])
		if err == nil {
			err = Rules(w, n)
		}
	case args[0] == "envelope" && len(args) == 1:
		_, err = w.WriteString(Envelope())
	case args[0] == "records" && len(args) == 2:
		err = Records(w, args[1])
	default:
		return errors.New(usage)
	}
	if err != nil {
		return err
	}
	return w.Flush()
}

// Message writes a message of exactly size bytes: the header, then body lines, the last
// one cut to fit and ended by a LF.
func Message(w io.Writer, size int64) error {
	if size < int64(len(header))+1 {
		return fmt.Errorf("message size %d: at least %d bytes", size, len(header)+1)
	}
	if _, err := io.WriteString(w, header); err != nil {
		return err
	}
	left := size - int64(len(header))
	// Whole body lines, written a block at a time.
	block := make([]byte, 0, 1<<16)
	for len(block)+len(bodyLine) <= cap(block) {
		block = append(block, bodyLine...)
	}
	for left > int64(len(block)) {
		if _, err := w.Write(block); err != nil {
			return err
		}
		left -= int64(len(block))
	}
	for left > 0 {
		n := min(left, int64(len(bodyLine)))
		line := []byte(bodyLine[:n])
		line[n-1] = '\n'
		if _, err := w.Write(line); err != nil {
			return err
		}
		left -= n
	}
	return nil
}

// Rules writes a list of n entries: mostly user@host and @host, some .host, every 100th an
// exception scoped to our recipients, and our own domains, which the generated message
// does not use.
func Rules(w io.Writer, n int) error {
	if n < 2 {
		return fmt.Errorf("rules %d: at least 2 entries", n)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	fmt.Fprintf(bw, "# generated list of %d entries\n", n)
	fmt.Fprintf(bw, "@acme-corp.example\tforged sender: acme-corp.example used from outside\n")
	fmt.Fprintf(bw, ".acme-corp.example\tforged sender: a subdomain of acme-corp.example\n")
	var b []byte
	for i := 2; i < n; i++ {
		b = b[:0]
		switch {
		case i%100 == 99:
			b = fmt.Appendf(b, "!billing%d@h%d.example rcpt=@acme-corp.example allowed partner\n", i, i-2)
		case i%4 == 0, i%4 == 1:
			b = fmt.Appendf(b, "user%d@host%d.example\tphishing campaign %d\n", i, i/8, i)
		case i%4 == 2:
			b = fmt.Appendf(b, "@h%d.example\tspam host\n", i)
		default:
			b = fmt.Appendf(b, ".s%d.example\tspam network\n", i)
		}
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Envelope is the generated message's envelope in qmail-queue form.
func Envelope() string {
	return "F" + Sender + "\x00T" + Recipient + "\x00\x00"
}

// Records writes every record of the CDB at path as cdbmake input (+klen,dlen:key->data),
// in file order, and the final empty line: cdbmake fed this builds the same records.
func Records(w io.Writer, path string) error {
	r, err := cdb.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	var b []byte
	err = r.ForEach(func(k, v []byte) error {
		b = append(b[:0], '+')
		b = strconv.AppendInt(b, int64(len(k)), 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, k...)
		b = append(b, "->"...)
		b = append(b, v...)
		b = append(b, '\n')
		_, err := w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}
