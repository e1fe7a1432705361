package milter

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"block-forged-sender/internal/header"
)

// Metrics counts the milter's verdicts and latencies and serves them in the Prometheus
// text exposition format (version 0.0.4). The zero value is ready to use; a nil *Metrics
// counts nothing. It is safe for concurrent use.
type Metrics struct {
	// RulesVersion, if set, gives the version of the rules in use, served as
	// bfs_milter_rules_info{version="..."} 1, so an operator can compare it across hosts.
	RulesVersion func() string

	mu       sync.Mutex
	messages map[counterKey]uint64
	message  histogram // MAIL FROM to verdict
	decide   histogram // one batch of look-ups
}

type counterKey struct {
	verdict Verdict
	reason  string
}

// latencyBuckets are the histogram upper bounds in seconds.
var latencyBuckets = [...]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type histogram struct {
	counts [len(latencyBuckets) + 1]uint64 // the last one is +Inf
	sum    float64
	n      uint64
}

func (h *histogram) add(d time.Duration) {
	s := d.Seconds()
	i, _ := slices.BinarySearch(latencyBuckets[:], s)
	h.counts[i]++
	h.sum += s
	h.n++
}

// VerdictWouldReject is the verdict label of a message monitor mode passed although a rule
// blocks it: counted apart from the passes.
const VerdictWouldReject Verdict = "would_reject"

// labels are the verdict and reason labels of a message: the rule's reason on reject (and
// would-reject), a fixed class on a fault (never the error text, which may hold
// addresses), "trusted" for a trusted pass.
func labels(e Entry) counterKey {
	d := e.Decision
	switch e.Verdict {
	case VerdictReject:
		return counterKey{e.Verdict, d.Reason()}
	case VerdictPass:
		switch {
		case d.Trusted != "":
			return counterKey{e.Verdict, "trusted"}
		case d.WouldReject:
			return counterKey{VerdictWouldReject, d.Reason()}
		}
		return counterKey{e.Verdict, ""}
	}
	var pe *PanicError
	switch {
	case errors.Is(e.Err, header.ErrFieldTooLong):
		return counterKey{e.Verdict, "field too long"}
	case errors.Is(e.Err, ErrTooManyRecipients):
		return counterKey{e.Verdict, "too many recipients"}
	case errors.Is(e.Err, ErrShuttingDown):
		return counterKey{e.Verdict, "shutting down"}
	case errors.As(e.Err, &pe):
		return counterKey{e.Verdict, "panic"}
	default:
		return counterKey{e.Verdict, "error"}
	}
}

func (m *Metrics) observe(e Entry) {
	if m == nil {
		return
	}
	k := labels(e)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.messages == nil {
		m.messages = make(map[counterKey]uint64)
	}
	m.messages[k]++
	m.message.add(e.Elapsed)
}

func (m *Metrics) observeDecide(d time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.decide.add(d)
}

// WriteText writes the metrics in the Prometheus text format to out.
func (m *Metrics) WriteText(out io.Writer) error {
	if m == nil {
		m = new(Metrics)
	}
	w := bufio.NewWriter(out)
	m.mu.Lock()
	keys := make([]counterKey, 0, len(m.messages))
	for k := range m.messages {
		keys = append(keys, k)
	}
	counts := make(map[counterKey]uint64, len(keys))
	for k, v := range m.messages {
		counts[k] = v
	}
	message, decide := m.message, m.decide
	m.mu.Unlock()

	slices.SortFunc(keys, func(a, b counterKey) int {
		if c := strings.Compare(string(a.verdict), string(b.verdict)); c != 0 {
			return c
		}
		return strings.Compare(a.reason, b.reason)
	})
	w.WriteString("# HELP bfs_milter_messages_total Messages by verdict and reason.\n")
	w.WriteString("# TYPE bfs_milter_messages_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(w, "bfs_milter_messages_total{verdict=\"%s\",reason=\"%s\"} %d\n",
			escapeLabel(string(k.verdict)), escapeLabel(k.reason), counts[k])
	}
	if m.RulesVersion != nil {
		w.WriteString("# HELP bfs_milter_rules_info The rules in use: their version (a hash of the compiled list).\n")
		w.WriteString("# TYPE bfs_milter_rules_info gauge\n")
		fmt.Fprintf(w, "bfs_milter_rules_info{version=\"%s\"} 1\n", escapeLabel(m.RulesVersion()))
	}
	writeHistogram(w, "bfs_milter_message_seconds", "Time from MAIL FROM to the verdict.", &message)
	writeHistogram(w, "bfs_milter_decide_seconds", "Time of one batch of policy look-ups (MAIL FROM, a header field, end of header).", &decide)
	return w.Flush()
}

func writeHistogram(w *bufio.Writer, name, help string, h *histogram) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var cum uint64
	for i, le := range latencyBuckets {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", name, strconv.FormatFloat(le, 'g', -1, 64), cum)
	}
	cum += h.counts[len(latencyBuckets)]
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n", name, cum)
	fmt.Fprintf(w, "%s_sum %s\n", name, formatFloat(h.sum))
	fmt.Fprintf(w, "%s_count %d\n", name, h.n)
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// escapeLabel escapes a label value: backslash, double quote and line feed.
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
