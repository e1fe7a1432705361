package milter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	lib "github.com/d--j/go-milter"
)

// ErrHeaderTooLarge is the fault for a header section over [Config.MaxHeader].
var ErrHeaderTooLarge = errors.New("milter: header section over the size cap")

// ErrShuttingDown is the fault for a message that starts while the server shuts down.
var ErrShuttingDown = errors.New("milter: shutting down")

// PanicError is the fault for a panic in the [Decider] or the adapter; the server goes on.
type PanicError struct{ Value any }

func (e *PanicError) Error() string { return fmt.Sprintf("milter: panic: %v", e.Value) }

// The protocol steps the milter does not need: the MTA skips them. Connect gives the client,
// MAIL FROM the sender and {auth_authen}, RCPT TO the recipients, the header fields and
// end-of-header the verdict; the body is never looked at. Header and RCPT events need no
// reply, which saves a round trip per field.
const protocol = lib.OptNoHelo | lib.OptNoData | lib.OptNoUnknown | lib.OptNoBody |
	lib.OptNoHeaderReply | lib.OptNoRcptReply | lib.OptHeaderLeadingSpace

// replyGrace is how long Shutdown waits, once every message in flight has its verdict,
// for the replies to be written: the library writes a reply after the handler returns.
const replyGrace = 500 * time.Millisecond

// keepBuffer is the largest header buffer a connection keeps for its next message.
const keepBuffer = 64 << 10

// Server is a milter server. Create it with [NewServer].
type Server struct {
	cfg Config
	lib *lib.Server

	mu       sync.Mutex
	inFlight int           // messages between MAIL FROM and their verdict
	idle     chan struct{} // closed when inFlight drops to 0 during shutdown; nil otherwise
	closing  bool
}

// NewServer returns a server that answers with cfg. It panics if cfg.Decider is nil.
func NewServer(cfg Config) *Server {
	if cfg.Decider == nil {
		panic("milter: Config.Decider is nil")
	}
	if cfg.MaxHeader <= 0 {
		cfg.MaxHeader = DefaultMaxHeader
	}
	s := &Server{cfg: cfg}
	opts := []lib.Option{
		lib.WithMilter(func() lib.Milter { return &session{srv: s} }),
		lib.WithProtocols(protocol),
		lib.WithActions(0),
		// The MTA sends these whatever its own macro lists say (Postfix's milter_*_macros).
		lib.WithMacroRequest(lib.StageConnect, []lib.MacroName{lib.MacroMTAFQDN}),
		lib.WithMacroRequest(lib.StageMail, []lib.MacroName{lib.MacroQueueId, lib.MacroAuthAuthen}),
		lib.WithMacroRequest(lib.StageEOH, []lib.MacroName{lib.MacroQueueId}),
	}
	if cfg.ReadTimeout > 0 {
		opts = append(opts, lib.WithReadTimeout(cfg.ReadTimeout))
	}
	if cfg.WriteTimeout > 0 {
		opts = append(opts, lib.WithWriteTimeout(cfg.WriteTimeout))
	}
	s.lib = lib.NewServer(opts...)
	return s
}

// Serve accepts milter connections on ln until [Server.Shutdown] or [Server.Close]; then it
// returns nil. It may be called for several listeners.
func (s *Server) Serve(ln net.Listener) error {
	err := s.lib.Serve(ln)
	if errors.Is(err, lib.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, refuses new messages temporarily, waits until every
// message in flight has its verdict, then closes all connections. The MTA applies its
// milter_default_action to later messages of its open SMTP sessions. If ctx ends first, the
// connections are closed at once and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	if s.idle == nil {
		s.idle = make(chan struct{})
		if s.inFlight == 0 {
			close(s.idle)
		}
	}
	idle := s.idle
	s.mu.Unlock()

	// The library's Shutdown closes the listeners and waits for the connections to end;
	// cancelling its context once nothing is in flight makes it close the idle ones.
	libCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-idle:
			// The last verdict is given to the library before it writes the reply: let
			// the write finish before the connections are closed.
			select {
			case <-time.After(replyGrace):
			case <-libCtx.Done():
			}
			cancel()
		case <-libCtx.Done():
		}
	}()
	err := s.lib.Shutdown(libCtx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	return s.lib.Close()
}

// begin counts a message in flight; false when the server is shutting down.
func (s *Server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.inFlight++
	return true
}

func (s *Server) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
	if s.inFlight == 0 && s.idle != nil {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
}

func (s *Server) trusted(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, p := range s.cfg.TrustedNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// session is the state of one milter connection: the client, and the message in progress.
type session struct {
	lib.NoOpMilter
	srv *Server

	leadSpace  bool // the MTA keeps the white space after the colon
	clientIP   netip.Addr
	clientHost string
	mtaHost    string // macro j

	// the message in progress; active from MAIL FROM to its verdict
	active   bool
	start    time.Time
	in       Input
	overflow bool // over Config.MaxHeader: the verdict is a fault
	used     int  // header and recipient bytes held
	trusted  bool
	buf      []byte
}

func (m *session) NewConnection(mod lib.Modifier) error {
	m.leadSpace = mod.Protocol()&lib.OptHeaderLeadingSpace != 0
	return nil
}

func (m *session) Connect(host, family string, port uint16, addr string, mod lib.Modifier) (*lib.Response, error) {
	m.clientIP, m.clientHost = netip.Addr{}, ""
	m.mtaHost = mod.Get(lib.MacroMTAFQDN)
	if family == "tcp4" || family == "tcp6" {
		if ip, err := netip.ParseAddr(addr); err == nil {
			m.clientIP = ip.Unmap()
		}
	}
	// Postfix passes "unknown" for a client without a verified name, Sendmail "[ip]".
	if host != "unknown" && !strings.HasPrefix(host, "[") {
		m.clientHost = host
	}
	return lib.RespContinue, nil
}

func (m *session) MailFrom(from, esmtpArgs string, mod lib.Modifier) (resp *lib.Response, err error) {
	m.finish() // a message the MTA dropped without an Abort
	m.in = Input{
		Stage:      StageMail,
		QueueID:    mod.Get(lib.MacroQueueId),
		ClientIP:   m.clientIP,
		ClientHost: m.clientHost,
		MTAHost:    m.mtaHost,
		AuthUser:   mod.Get(lib.MacroAuthAuthen),
		Sender:     from,
	}
	m.overflow = false
	m.used = 0
	m.trusted = false
	m.buf = m.buf[:0]
	if !m.srv.begin() {
		return m.reply(VerdictTempFail, StageMail, Result{}, ErrShuttingDown), nil
	}
	m.active = true
	m.start = time.Now()
	if m.in.AuthUser != "" || m.srv.trusted(m.clientIP) {
		m.trusted = true
		return m.reply(VerdictPass, StageMail, Result{}, nil), nil
	}
	return m.decide()
}

func (m *session) RcptTo(rcptTo, esmtpArgs string, mod lib.Modifier) (*lib.Response, error) {
	if m.active && !m.overflow {
		m.used += len(rcptTo) + 16 // the string and its slice entry
		if m.used > m.srv.cfg.MaxHeader {
			m.overflow = true
		} else {
			m.in.Recipients = append(m.in.Recipients, rcptTo)
		}
	}
	return lib.RespContinue, nil
}

func (m *session) Header(name, value string, mod lib.Modifier) (*lib.Response, error) {
	if !m.active || m.overflow {
		return lib.RespContinue, nil
	}
	// Neither may end the header early; a name that starts a line of its own would leave
	// the line before it empty.
	name = noEmptyLines(strings.TrimLeft(name, "\r\n"))
	value = noEmptyLines(value)
	n := len(name) + 1 + len(value) + 2
	if !m.leadSpace {
		n++
	}
	if m.used+n+2 > m.srv.cfg.MaxHeader {
		m.overflow = true
		return lib.RespContinue, nil
	}
	m.used += n
	m.buf = append(m.buf, name...)
	m.buf = append(m.buf, ':')
	if !m.leadSpace {
		// The MTA ate one space after the colon; any space does for the scanner.
		m.buf = append(m.buf, ' ')
	}
	m.buf = append(m.buf, value...)
	m.buf = append(m.buf, '\r', '\n')
	return lib.RespContinue, nil
}

func (m *session) Headers(mod lib.Modifier) (*lib.Response, error) {
	if !m.active {
		return lib.RespContinue, nil
	}
	if q := mod.Get(lib.MacroQueueId); q != "" {
		m.in.QueueID = q
	}
	m.in.Stage = StageHeader
	if m.overflow {
		return m.reply(m.faultVerdict(), StageHeader, Result{}, ErrHeaderTooLarge), nil
	}
	m.buf = append(m.buf, '\r', '\n')
	m.in.Header = m.buf
	return m.decide()
}

func (m *session) EndOfMessage(mod lib.Modifier) (*lib.Response, error) {
	if !m.active {
		return lib.RespAccept, nil
	}
	// An MTA that never sent end-of-header: decide on what came.
	return m.Headers(mod)
}

func (m *session) Abort(mod lib.Modifier) error {
	m.finish()
	return nil
}

func (m *session) Cleanup(mod lib.Modifier) {
	m.finish()
}

// finish drops the message in progress without a verdict (aborted transaction).
func (m *session) finish() {
	if m.active {
		m.active = false
		m.srv.end()
	}
	m.in.Header = nil
	if cap(m.buf) > keepBuffer {
		m.buf = nil
	}
}

// decide asks the Decider at the current stage, turning a panic into a fault.
func (m *session) decide() (resp *lib.Response, err error) {
	stage := m.in.Stage
	defer func() {
		if v := recover(); v != nil {
			resp = m.reply(m.faultVerdict(), stage, Result{}, &PanicError{Value: v})
		}
	}()
	t := time.Now()
	res, err := m.srv.cfg.Decider.Decide(&m.in)
	m.srv.cfg.Metrics.observeDecide(time.Since(t))
	switch {
	case err != nil:
		return m.reply(m.faultVerdict(), stage, Result{}, err), nil
	case res.Reject:
		return m.reply(VerdictReject, stage, res, nil), nil
	case stage == StageMail:
		return lib.RespContinue, nil
	default:
		return m.reply(VerdictPass, stage, res, nil), nil
	}
}

func (m *session) faultVerdict() Verdict {
	if m.srv.cfg.FailOpen {
		return VerdictFailOpen
	}
	return VerdictTempFail
}

// reply ends the message with verdict v: it logs, counts, and returns the MTA's answer.
func (m *session) reply(v Verdict, stage Stage, res Result, fault error) *lib.Response {
	e := Entry{
		QueueID:    m.in.QueueID,
		Stage:      stage,
		Verdict:    v,
		Trusted:    m.trusted,
		ClientIP:   m.in.ClientIP,
		ClientHost: m.in.ClientHost,
		AuthUser:   m.in.AuthUser,
		Sender:     m.in.Sender,
		Recipients: m.in.Recipients,
		Result:     res,
		Err:        fault,
	}
	if m.active {
		e.Elapsed = time.Since(m.start)
	}
	if m.srv.cfg.Log != nil {
		m.srv.cfg.Log(e)
	}
	m.srv.cfg.Metrics.observe(e)
	m.finish()
	return response(v, res)
}

// response is the one place where a verdict becomes a milter reply.
func response(v Verdict, res Result) *lib.Response {
	switch v {
	case VerdictReject:
		reason := res.Reason
		if reason == "" {
			reason = DefaultReason
		}
		// RFC 3463 5.7.1: delivery not authorized, message refused.
		if r, err := lib.RejectWithCodeAndReason(550, "5.7.1 "+oneLine(reason)); err == nil {
			return r
		}
		return lib.RespReject
	case VerdictTempFail:
		// RFC 3463 4.7.1, as for the qmail modes' temporary failures.
		if r, err := lib.RejectWithCodeAndReason(451, "4.7.1 temporary failure in the sender check, try again later"); err == nil {
			return r
		}
		return lib.RespTempFail
	default:
		return lib.RespAccept
	}
}

// oneLine keeps a reason to one printable reply line of bounded length.
func oneLine(s string) string {
	const max = 400
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			break
		}
		if r < 0x20 || r == 0x7f {
			r = ' '
		}
		b.WriteRune(r)
	}
	return b.String()
}

// noEmptyLines returns a field value as the MTA delimited it, but unable to end the
// rebuilt header early: line breaks at its end are dropped (the field's own CRLF follows)
// and a run of line breaks inside it (an empty line, which would end the header for
// header.Scan and leave the fields after it unchecked) becomes one LF. The text after such
// a break is still read as header lines, a field among them included. Postfix and Sendmail
// never pass such values; a milter must not depend on it.
func noEmptyLines(v string) string {
	if !strings.ContainsAny(v, "\r\n") {
		return v
	}
	v = strings.TrimRight(v, "\r\n")
	var b []byte
	for i := 0; i < len(v); {
		j := i
		breaks := 0
		for j < len(v) && (v[j] == '\r' || v[j] == '\n') {
			if v[j] == '\r' && j+1 < len(v) && v[j+1] == '\n' {
				j++ // CRLF is one break
			}
			j++
			breaks++
		}
		switch {
		case j == i:
			j++
			if b != nil {
				b = append(b, v[i])
			}
		case breaks > 1:
			if b == nil {
				b = append(make([]byte, 0, len(v)), v[:i]...)
			}
			b = append(b, '\n')
		default:
			if b != nil {
				b = append(b, v[i:j]...)
			}
		}
		i = j
	}
	if b == nil {
		return v
	}
	return string(b)
}
