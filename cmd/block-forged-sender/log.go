package main

import (
	"context"
	"io"
	"log/slog"
	"log/syslog"
	"strconv"
	"strings"
	"time"

	"block-forged-sender/internal/policy"
)

// prefixWriter puts the program's name before each log line, as multilog users expect.
type prefixWriter struct{ w io.Writer }

func (p prefixWriter) Write(b []byte) (int, error) {
	line := make([]byte, 0, len(b)+21)
	line = append(line, "block-forged-sender: "...)
	line = append(line, b...)
	if _, err := p.w.Write(line); err != nil {
		return 0, err
	}
	return len(b), nil
}

// newLogger logs key=value lines without time or level (the supervisor's logger adds the
// time): to stderr, or to syslog as "bfs" (facility mail) when asked. Values with blanks,
// quotes, control bytes or invalid UTF-8 are quoted and escaped by slog.
func newLogger(c *config, stderr io.Writer) *slog.Logger {
	var w io.Writer = prefixWriter{stderr}
	if c.syslog {
		// Without a syslog daemon the line goes to stderr rather than nowhere.
		if sw, err := syslog.New(syslog.LOG_MAIL|syslog.LOG_INFO, "bfs"); err == nil {
			w = sw
		}
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	return slog.New(h)
}

// maxLogFrom bounds the header addresses named in a log line.
const maxLogFrom = 20

// record is what one message's log line says.
type record struct {
	start    time.Time
	verdict  string // pass, reject, tempfail
	exit     int
	mode     string
	trusted  string
	sender   string
	haveEnv  bool
	decision *policy.Decision
	from     []string // the header sender addresses seen, each once
	size     int64
	err      error
	warning  string
}

// log writes the one line for a message.
func (r *record) log(lg *slog.Logger, e env) {
	attrs := []slog.Attr{slog.String("verdict", r.verdict), slog.Int("exit", r.exit)}
	if r.mode == modeMonitor {
		attrs = append(attrs, slog.String("mode", r.mode))
		if r.decision != nil && r.decision.Verdict == policy.Reject {
			attrs = append(attrs, slog.String("monitor", "would reject"))
		}
	}
	if r.trusted != "" {
		attrs = append(attrs, slog.String("trusted", r.trusted))
	}
	if d := r.decision; d != nil {
		if d.Verdict == policy.Reject {
			attrs = append(attrs, slog.String("reason", d.Reason()))
			if rule := d.Rule(); rule != nil {
				attrs = append(attrs, slog.String("rule", rule.File+":"+strconv.Itoa(rule.Line)))
			}
			attrs = append(attrs, slog.String("matched", d.Decider.Source+":"+d.Decider.Address))
		}
	}
	if r.haveEnv {
		s := r.sender
		if s == "" {
			s = "<>"
		}
		attrs = append(attrs, slog.String("sender", s))
	}
	if len(r.from) > 0 {
		from := strings.Join(r.from[:min(len(r.from), maxLogFrom)], ",")
		if len(r.from) > maxLogFrom {
			from += ",... (" + strconv.Itoa(len(r.from)) + " in all)"
		}
		attrs = append(attrs, slog.String("from", from))
	}
	if ip := e.get("TCPREMOTEIP"); ip != "" {
		attrs = append(attrs, slog.String("client", ip))
	}
	if pp := e.get("QMAILPPID"); pp != "" {
		attrs = append(attrs, slog.String("qmailppid", pp))
	}
	attrs = append(attrs, slog.Int64("size", r.size), slog.Duration("duration", time.Since(r.start).Round(time.Microsecond)))
	if r.warning != "" {
		attrs = append(attrs, slog.String("warning", r.warning))
	}
	if r.err != nil {
		attrs = append(attrs, slog.String("error", r.err.Error()))
	}
	lg.LogAttrs(context.Background(), slog.LevelInfo, "", attrs...)
}
