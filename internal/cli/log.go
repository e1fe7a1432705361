package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"log/syslog"
	"strconv"
	"strings"
	"sync"
	"time"

	"block-forged-sender/internal/policy"
)

// Levels of the log lines, which syslog gets as priorities: a pass is info, a rejection
// notice, a temporary failure warning, an internal bug an error.
const (
	LevelPass     = slog.LevelInfo
	LevelReject   = slog.Level(2) // between info and warning: syslog's notice
	LevelTempFail = slog.LevelWarn
	LevelBug      = slog.LevelError
)

// Logger writes the programs' log lines: key=value, no time (the supervisor's logger adds
// it), to stderr with the "block-forged-sender: " prefix (for multilog), or to syslog as
// "bfs" with facility mail and a priority from the level. Values with blanks, quotes,
// control bytes or invalid UTF-8 are quoted and escaped.
type Logger struct {
	mu  sync.Mutex
	w   io.Writer      // stderr
	sys *syslog.Writer // or syslog
	buf bytes.Buffer
	h   slog.Handler
}

// NewLogger returns a logger to stderr, or to syslog when toSyslog (falling back to stderr
// without a syslog daemon, rather than logging nowhere).
func NewLogger(stderr io.Writer, toSyslog bool) *Logger {
	lg := &Logger{w: stderr}
	if toSyslog {
		if sw, err := syslog.New(syslog.LOG_MAIL|syslog.LOG_INFO, "bfs"); err == nil {
			lg.sys = sw
		}
	}
	lg.h = slog.NewTextHandler(&lg.buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	return lg
}

// Log writes one line of attributes at level.
func (lg *Logger) Log(level slog.Level, attrs ...slog.Attr) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	lg.buf.Reset()
	rec := slog.NewRecord(time.Time{}, level, "", 0)
	rec.AddAttrs(attrs...)
	if err := lg.h.Handle(context.Background(), rec); err != nil {
		return
	}
	line := bytes.TrimRight(lg.buf.Bytes(), "\n")
	if lg.sys != nil {
		s := string(line)
		switch {
		case level >= LevelBug:
			lg.sys.Err(s)
		case level >= LevelTempFail:
			lg.sys.Warning(s)
		case level >= LevelReject:
			lg.sys.Notice(s)
		default:
			lg.sys.Info(s)
		}
		return
	}
	out := make([]byte, 0, len(line)+22)
	out = append(out, "block-forged-sender: "...)
	out = append(out, line...)
	out = append(out, '\n')
	lg.w.Write(out)
}

// Event logs a line that is not about a message (start, reload, shutdown), as key, value
// pairs of strings.
func (lg *Logger) Event(level slog.Level, kv ...string) {
	attrs := make([]slog.Attr, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs = append(attrs, slog.String(kv[i], kv[i+1]))
	}
	lg.Log(level, attrs...)
}

// maxLogAddrs bounds the addresses named in one field of a log line.
const maxLogAddrs = 20

// Record is one message's log line, the same schema for the qmail modes and the milter:
// the same names for the same things, durations in milliseconds.
type Record struct {
	// The milter's: its session (one milter connection), the MTA's queue id, the stage
	// of the verdict (mail: MAIL FROM, header: end of header).
	Session, Queue, Stage string
	Verdict               string // pass, reject, tempfail; failopen (milter --fail-open)
	Exit                  int    // the qmail modes' exit code
	HasExit               bool
	Mode                  policy.Mode
	Decision              *policy.Decision // nil before any decision (a fault first)
	Trusted               string
	Sender                string // the envelope sender, "" for <>
	HaveSender            bool
	Rcpts                 []string
	Client, Host, Auth    string
	MsgID                 string
	Rules                 string // the rules version
	Pid                   int    // the qmail modes' pid (qmail-smtpd's "qp" in queue mode)
	QmailPPID             string
	Size                  int64
	HasSize               bool
	Duration              time.Duration
	Warning               string
	Err                   error
}

// Level is the record's log level, from its verdict (and exit code).
func (r *Record) Level() slog.Level {
	switch r.Verdict {
	case "pass":
		return LevelPass
	case "reject":
		return LevelReject
	}
	if r.HasExit && r.Exit == 81 {
		return LevelBug
	}
	return LevelTempFail
}

// Log writes the record.
func (r *Record) Log(lg *Logger) { lg.Log(r.Level(), r.Attrs()...) }

// Attrs returns the record's fields in their order.
func (r *Record) Attrs() []slog.Attr {
	a := make([]slog.Attr, 0, 24)
	str := func(k, v string) {
		if v != "" {
			a = append(a, slog.String(k, v))
		}
	}
	str("session", r.Session)
	if r.Session != "" || r.Stage != "" {
		a = append(a, slog.String("queue", r.Queue))
	}
	a = append(a, slog.String("verdict", r.Verdict))
	str("stage", r.Stage)
	if r.HasExit {
		a = append(a, slog.Int("exit", r.Exit))
	}
	trusted := r.Trusted
	d := r.Decision
	if d != nil && d.Trusted != "" {
		trusted = d.Trusted
	}
	if r.Mode == policy.ModeMonitor {
		a = append(a, slog.String("mode", string(r.Mode)))
		if d != nil && d.WouldReject {
			a = append(a, slog.String("monitor", "would reject"))
		}
	}
	str("trusted", trusted)
	if d != nil && d.Decider != nil {
		a = append(a, slog.String("reason", d.Reason()))
		if rule := d.Rule(); rule != nil {
			a = append(a, slog.String("rule", rule.File+":"+strconv.Itoa(rule.Line)))
		}
		a = append(a, slog.String("matched", d.Decider.Source+":"+d.Decider.Address))
	} else if d != nil && d.Excepted != nil && r.Verdict == "pass" {
		// What let a blocked address through: an exception, or an allowed pattern.
		e := d.Excepted
		if e.Allowed {
			a = append(a, slog.String("allowed", "BFS_ALLOW"))
		} else if x := e.Match.Except; x != nil {
			a = append(a, slog.String("excepted", x.File+":"+strconv.Itoa(x.Line)))
		}
		if b := e.Match.Block; b != nil {
			a = append(a, slog.String("rule", b.File+":"+strconv.Itoa(b.Line)))
		}
		a = append(a, slog.String("matched", e.Source+":"+e.Address))
	}
	if r.HaveSender {
		s := r.Sender
		if s == "" {
			s = "<>"
		}
		a = append(a, slog.String("sender", s))
	}
	if d != nil && len(d.From) > 0 {
		from := joinAddrs(d.From)
		if d.FromCount > len(d.From) {
			from += ",... (" + strconv.Itoa(d.FromCount) + " in all)"
		}
		a = append(a, slog.String("from", from))
	}
	if len(r.Rcpts) > 0 {
		rc := joinAddrs(r.Rcpts[:min(len(r.Rcpts), maxLogAddrs)])
		if len(r.Rcpts) > maxLogAddrs {
			rc += ",... (" + strconv.Itoa(len(r.Rcpts)) + " in all)"
		}
		a = append(a, slog.String("rcpt", rc))
	}
	str("client", r.Client)
	str("host", r.Host)
	str("auth", r.Auth)
	str("msgid", r.MsgID)
	str("rules", r.Rules)
	if r.Pid != 0 {
		a = append(a, slog.Int("pid", r.Pid))
	}
	str("qmailppid", r.QmailPPID)
	if r.HasSize {
		a = append(a, slog.Int64("size", r.Size))
	}
	a = append(a, slog.String("duration", Millis(r.Duration)))
	str("warning", r.Warning)
	if r.Err != nil {
		a = append(a, slog.String("error", r.Err.Error()))
	}
	return a
}

// maxLogAddr bounds one address in a log line: a sender field may hold an address of a
// megabyte, which no log line should.
const maxLogAddr = 256

// joinAddrs joins addresses with commas, each cut to maxLogAddr bytes ("...").
func joinAddrs(addrs []string) string {
	var b strings.Builder
	for i, a := range addrs {
		if i > 0 {
			b.WriteByte(',')
		}
		if len(a) > maxLogAddr {
			b.WriteString(a[:maxLogAddr])
			b.WriteString("...")
			continue
		}
		b.WriteString(a)
	}
	return b.String()
}

// Millis formats d in milliseconds with three decimals ("1.234ms"): one unit for every
// duration in the logs.
func Millis(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64) + "ms"
}
