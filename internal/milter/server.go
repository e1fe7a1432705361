package milter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lib "github.com/d--j/go-milter"

	"block-forged-sender/internal/header"
	"block-forged-sender/internal/policy"
)

// ErrTooManyRecipients is the fault for a message over [MaxRecipients].
var ErrTooManyRecipients = errors.New("milter: too many recipients")

// ErrShuttingDown is the fault for a message that starts while the server shuts down.
var ErrShuttingDown = errors.New("milter: shutting down")

// PanicError is the fault for a panic while judging a message; the server goes on.
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

// Server is a milter server. Create it with [NewServer].
type Server struct {
	cfg Config
	lib *lib.Server

	sessions atomic.Uint64 // milter connections so far: the session ids

	mu       sync.Mutex
	inFlight int           // messages between MAIL FROM and their verdict
	idle     chan struct{} // closed when inFlight drops to 0 during shutdown; nil otherwise
	closing  bool
}

// NewServer returns a server that answers with cfg. It panics if cfg.Policy or cfg.Rules
// is nil.
func NewServer(cfg Config) *Server {
	if cfg.Policy == nil || cfg.Rules == nil {
		panic("milter: Config.Policy or Config.Rules is nil")
	}
	if cfg.MaxField <= 0 {
		cfg.MaxField = header.DefaultMaxField
	}
	s := &Server{cfg: cfg}
	opts := []lib.Option{
		lib.WithMilter(func() lib.Milter { return &session{srv: s, id: strconv.FormatUint(s.sessions.Add(1), 10)} }),
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

// session is the state of one milter connection: the client, and the message in progress.
type session struct {
	lib.NoOpMilter
	srv *Server
	id  string

	clientIP   netip.Addr
	clientHost string
	mtaHost    string // macro j

	// the message in progress; active from MAIL FROM to its verdict
	active bool
	start  time.Time
	judge  *policy.Judge
	e      Entry
	fault  error // a fault met while the MTA goes on talking: the verdict at the next reply
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
	m.e = Entry{
		Session:    m.id,
		QueueID:    mod.Get(lib.MacroQueueId),
		ClientIP:   m.clientIP,
		ClientHost: m.clientHost,
		AuthUser:   mod.Get(lib.MacroAuthAuthen),
		Sender:     from,
	}
	m.fault = nil
	if !m.srv.begin() {
		return m.reply(VerdictTempFail, StageMail, ErrShuttingDown), nil
	}
	m.active = true
	m.start = time.Now()
	defer m.recover(StageMail, &resp)
	m.judge = policy.NewJudge(m.policy(), policy.Client{IP: m.clientIP, Host: m.clientHost, AuthUser: m.e.AuthUser})
	if m.judge.Trusted() != "" {
		m.e.Decision = m.judge.Decide()
		return m.reply(VerdictPass, StageMail, nil), nil
	}
	m.with(func() { m.judge.Sender(from) })
	d := m.judge.Decide()
	switch d.Verdict {
	case policy.Reject, policy.TempFail:
		return m.verdict(StageMail, d), nil
	}
	return lib.RespContinue, nil // a pass needs the header; monitor mode logs at its end
}

func (m *session) RcptTo(rcptTo, esmtpArgs string, mod lib.Modifier) (*lib.Response, error) {
	if m.active && m.fault == nil {
		if len(m.e.Recipients) >= MaxRecipients {
			m.fault = ErrTooManyRecipients
		} else {
			m.e.Recipients = append(m.e.Recipients, rcptTo)
		}
	}
	return lib.RespContinue, nil
}

func (m *session) Header(name, value string, mod lib.Modifier) (resp *lib.Response, err error) {
	if !m.active || m.judge.Trusted() != "" || m.fault != nil {
		return lib.RespContinue, nil
	}
	switch n := strings.TrimSpace(name); {
	case m.e.MessageID == "" && strings.EqualFold(n, "Message-ID"):
		m.e.MessageID = strings.TrimSpace(value)[:min(len(strings.TrimSpace(value)), header.MaxInfo)]
	case strings.EqualFold(n, "Content-Type"):
		m.judge.ContentType([]byte(value[:min(len(value), header.MaxInfo)]))
	}
	defer func() {
		if v := recover(); v != nil {
			m.fault = &PanicError{Value: v}
		}
	}()
	// Each field as the MTA delimited it, read by the same function the qmail modes use:
	// never turned back into bytes to be scanned again.
	opt := header.Options{MaxField: m.srv.cfg.MaxField, AllSenderFields: m.srv.cfg.Policy.AllSenderFields}
	m.with(func() { m.fault = header.Readings([]byte(name), []byte(value), opt, m.judge.Field) })
	return lib.RespContinue, nil
}

func (m *session) Headers(mod lib.Modifier) (resp *lib.Response, err error) {
	if !m.active {
		return lib.RespContinue, nil
	}
	if q := mod.Get(lib.MacroQueueId); q != "" {
		m.e.QueueID = q
	}
	defer m.recover(StageHeader, &resp)
	if m.judge.Trusted() != "" {
		return m.reply(VerdictPass, StageHeader, nil), nil
	}
	m.with(func() {
		m.judge.Recipients(m.e.Recipients)
		m.judge.HeaderDone(m.fault)
	})
	return m.verdict(StageHeader, m.judge.Decide()), nil
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

// policy is the configuration this session's messages are judged with: an unqualified
// address is qualified with Config.DefaultHost given the MTA's host name.
func (m *session) policy() *policy.Config {
	if m.srv.cfg.DefaultHost == nil {
		return m.srv.cfg.Policy
	}
	pc := *m.srv.cfg.Policy
	mta := m.mtaHost
	pc.DefaultHost = func() (string, error) { return m.srv.cfg.DefaultHost(mta) }
	return &pc
}

// with runs fn with the rules in use, released again when fn returns.
func (m *session) with(fn func()) {
	t := time.Now()
	l, release := m.srv.cfg.Rules.Acquire()
	defer func() {
		release()
		m.srv.cfg.Metrics.observeDecide(time.Since(t))
	}()
	m.judge.Use(l)
	fn()
}

// recover turns a panic while judging into a fault reply.
func (m *session) recover(stage Stage, resp **lib.Response) {
	if v := recover(); v != nil {
		*resp = m.reply(m.faultVerdict(), stage, &PanicError{Value: v})
	}
}

// finish drops the message in progress without a verdict (aborted transaction).
func (m *session) finish() {
	if m.active {
		m.active = false
		m.srv.end()
	}
	m.judge = nil
}

// verdict replies with the policy's decision.
func (m *session) verdict(stage Stage, d policy.Decision) *lib.Response {
	m.e.Decision = d
	switch d.Verdict {
	case policy.Reject:
		return m.reply(VerdictReject, stage, nil)
	case policy.Pass:
		return m.reply(VerdictPass, stage, nil)
	case policy.TempFail:
		return m.reply(m.faultVerdict(), stage, d.Err)
	}
	return m.reply(m.faultVerdict(), stage, errors.New("milter: no final verdict at the end of the header"))
}

func (m *session) faultVerdict() Verdict {
	if m.srv.cfg.FailOpen {
		return VerdictFailOpen
	}
	return VerdictTempFail
}

// reply ends the message with verdict v: it logs, counts, and returns the MTA's answer.
func (m *session) reply(v Verdict, stage Stage, fault error) *lib.Response {
	e := m.e
	e.Stage, e.Verdict, e.Err = stage, v, fault
	if m.active {
		e.Elapsed = time.Since(m.start)
	}
	if m.srv.cfg.Log != nil {
		m.srv.cfg.Log(e)
	}
	m.srv.cfg.Metrics.observe(e)
	m.finish()
	return response(v, e.Decision)
}

// response is the one place where a verdict becomes a milter reply.
func response(v Verdict, d policy.Decision) *lib.Response {
	switch v {
	case VerdictReject:
		// RFC 3463 5.7.1: delivery not authorized, message refused.
		if r, err := lib.RejectWithCodeAndReason(550, "5.7.1 "+oneLine(d.Reason())); err == nil {
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
