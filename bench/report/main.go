// Command report turns the raw results of bench/run (hyperfine JSON exports, peak RSS
// samples, go test -bench output) into the table of medians, ratios and targets that
// BENCHMARKS.md holds.
//
//	report DIR
//
// DIR holds perf-1k.json, perf-10m.json, thru-file.json, thru-pipe.json, queue.json and
// compile.json (hyperfine --export-json, commands named with -n), rss.txt (lines "NAME
// KIB"), gobench.txt, milter.txt and qmail.txt (go test -bench output). A missing file
// gives a row that says so.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: report DIR")
		os.Exit(2)
	}
	report(os.Stdout, os.Args[1])
}

// hyperfine is the part of a hyperfine --export-json file that the table uses.
type hyperfine struct {
	Results []struct {
		Command string    `json:"command"`
		Median  float64   `json:"median"`
		Times   []float64 `json:"times"`
	} `json:"results"`
}

// medians reads a hyperfine export and returns the median time in seconds of each named
// command; nil when the file cannot be read.
func medians(path string) map[string]float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var h hyperfine
	if err := json.Unmarshal(b, &h); err != nil {
		return nil
	}
	m := map[string]float64{}
	for _, r := range h.Results {
		m[r.Command] = r.Median
	}
	return m
}

// median returns the median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// samples reads lines "NAME VALUE" and returns the values of each name.
func samples(path string) map[string][]float64 {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	m := map[string][]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 2 {
			continue
		}
		if v, err := strconv.ParseFloat(fs[1], 64); err == nil {
			m[fs[0]] = append(m[fs[0]], v)
		}
	}
	return m
}

// goBench holds the medians of one Go benchmark over its -count runs, by unit
// ("ns/op", "MB/s", "allocs/op", ...).
type goBench map[string]float64

// goBenches parses go test -bench output: "BenchmarkX/sub-2  N  V unit  V unit ...".
// The -GOMAXPROCS suffix is dropped from the names.
func goBenches(r io.Reader) map[string]goBench {
	all := map[string]map[string][]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || !strings.HasPrefix(fs[0], "Benchmark") {
			continue
		}
		name := fs[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		if all[name] == nil {
			all[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(fs); i += 2 {
			if v, err := strconv.ParseFloat(fs[i], 64); err == nil {
				all[name][fs[i+1]] = append(all[name][fs[i+1]], v)
			}
		}
	}
	out := map[string]goBench{}
	for name, units := range all {
		out[name] = goBench{}
		for u, vs := range units {
			out[name][u] = median(vs)
		}
	}
	return out
}

func readGoBenches(path string) map[string]goBench {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	return goBenches(f)
}

// row is one line of the table.
type row struct {
	num, what, ours, base, ratio, target, met string
}

// verdict is "yes" or "**no**" for the met column.
func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func ms(s float64) string { return fmt.Sprintf("%.3f ms", s*1e3) }

func mibps(bytes, s float64) string { return fmt.Sprintf("%.0f MiB/s", bytes/s/(1<<20)) }

// missing is the row for a measurement whose results are absent.
func missing(num, what, file string) row {
	return row{num, what, "—", "—", "—", "—", "not measured (" + file + " missing; see the log)"}
}

// perMessage is a row of measurements 1, 2 and 4: ours vs cat, both started the same way.
func perMessage(dir, file, num, what string, target float64) []row {
	m := medians(filepath.Join(dir, file))
	ours, okO := m["ours"]
	cat, okC := m["cat"]
	if !okO || !okC {
		return []row{missing(num, what, file)}
	}
	r := row{num, what, ms(ours), "cat " + ms(cat), fmt.Sprintf("%.2fx", ours/cat), "—", "—"}
	if target > 0 {
		r.target = fmt.Sprintf("≤ %.1fx", target)
		r.met = verdict(ours/cat <= target)
	}
	rows := []row{r}
	if l, ok := m["launcher"]; ok && cat > l {
		net := (ours - l) / (cat - l)
		rows = append(rows, row{"", "… net of the `sh -c` launcher (" + ms(l) + ")", ms(ours - l), "cat " + ms(cat-l), fmt.Sprintf("%.2fx", net), "", ""})
		if g, ok := m["gocat"]; ok {
			rows = append(rows, row{"", "… Go floor: bench/gocat (io.Copy only), net", ms(g - l), "cat " + ms(cat-l), fmt.Sprintf("%.2fx", (g-l)/(cat-l)), "", ""})
		}
	}
	return rows
}

// throughput is a row of measurement 3: time to pass 1 GiB, as throughput.
func throughput(dir, file, num, what string) row {
	const size = 1 << 30
	m := medians(filepath.Join(dir, file))
	ours, okO := m["ours"]
	cat, okC := m["cat"]
	if !okO || !okC {
		return missing(num, what, file)
	}
	note := ""
	if p, ok := m["producer"]; ok {
		note = fmt.Sprintf(" (producer alone: %s)", ms(p))
	}
	return row{num, what, mibps(size, ours) + " (" + ms(ours) + ")", "cat " + mibps(size, cat) + " (" + ms(cat) + ")" + note,
		fmt.Sprintf("%.2fx", cat/ours), "≥ 0.9x", verdict(cat/ours >= 0.9)}
}

// rss is the row of measurement 3 for peak RSS: 1 MiB vs 1 GiB, both under 12 MiB.
func rss(dir, in, num, what string) row {
	s := samples(filepath.Join(dir, "rss.txt"))
	small, big := s["ours-"+in+"-1m"], s["ours-"+in+"-1g"]
	if len(small) == 0 || len(big) == 0 {
		return missing(num, what, "rss.txt")
	}
	a, b := median(small), median(big)
	base := ""
	if c := s["cat-"+in+"-1g"]; len(c) > 0 {
		base = fmt.Sprintf("cat %.1f MiB", median(c)/1024)
	}
	ok := b < 12*1024 && a < 12*1024 && b/a <= 1.10 && a/b <= 1.10
	return row{num, what, fmt.Sprintf("%.1f MiB (1 MiB msg), %.1f MiB (1 GiB msg)", a/1024, b/1024), base,
		fmt.Sprintf("%.2fx", b/a), "< 12 MiB, ≤ 1.10x", verdict(ok)}
}

// compile is measurement 5: ours vs cdbmake on the same records.
func compile(dir string) row {
	const what = "compile 10,000,000 rules: ours (text) vs cdbmake (same records)"
	m := medians(filepath.Join(dir, "compile.json"))
	ours, okO := m["ours"]
	mk, okM := m["cdbmake"]
	if !okO || !okM {
		return missing("5", what, "compile.json")
	}
	return row{"5", what, ms(ours), "cdbmake " + ms(mk), fmt.Sprintf("%.2fx", ours/mk), "≤ 1.0x", verdict(ours <= mk)}
}

// goRows are measurement 6 (and 7 when the milter has a benchmark).
func goRows(dir string) []row {
	gb := readGoBenches(filepath.Join(dir, "gobench.txt"))
	var rows []row
	// The scanner: the same header-heavy message at two sizes; allocations per message
	// must not grow with the header.
	small, big := gb["BenchmarkScanHeader/4KiB"], gb["BenchmarkScanHeader/1MiB"]
	if small == nil || big == nil {
		rows = append(rows, missing("6", "header scanner", "gobench.txt"))
	} else {
		perByte := (big["allocs/op"] - small["allocs/op"]) / float64(1<<20-4<<10)
		rows = append(rows, row{"6", "header scanner, header-heavy message (bench/scan_test.go)",
			fmt.Sprintf("%.0f MB/s (1 MiB header), %.0f MB/s (4 KiB)", big["MB/s"], small["MB/s"]),
			fmt.Sprintf("allocs/msg: %.0f (4 KiB), %.0f (1 MiB)", small["allocs/op"], big["allocs/op"]),
			fmt.Sprintf("%.2g allocs/byte", perByte), "0 allocs/byte", verdict(perByte <= 0)})
	}
	if c := gb["BenchmarkScan/LF"]; c != nil {
		rows = append(rows, row{"", "… internal/header BenchmarkScan/LF (60 KB header)", fmt.Sprintf("%.0f MB/s", c["MB/s"]),
			fmt.Sprintf("%.0f B/op, %.0f allocs/op", c["B/op"], c["allocs/op"]), "", "", ""})
	}
	if c := gb["BenchmarkCopy"]; c != nil {
		rows = append(rows, row{"", "… internal/header BenchmarkCopy (io.Copy of the same bytes)", fmt.Sprintf("%.0f MB/s", c["MB/s"]), "", "", "", ""})
	}
	found := false
	for _, n := range []string{"1000", "1000000"} {
		c := gb["BenchmarkLookup/n="+n]
		if c == nil {
			continue
		}
		found = true
		rows = append(rows, row{"6", "CDB look-up, " + n + " records (internal/cdb BenchmarkLookup)", fmt.Sprintf("%.0f ns/op", c["ns/op"]),
			fmt.Sprintf("%.0f B/op", c["B/op"]), fmt.Sprintf("%.0f allocs/op", c["allocs/op"]), "0 allocs/op", verdict(c["allocs/op"] == 0)})
	}
	if !found {
		rows = append(rows, missing("6", "CDB look-up", "gobench.txt"))
	}
	mb := readGoBenches(filepath.Join(dir, "milter.txt"))
	names := make([]string, 0, len(mb))
	for n := range mb {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		rows = append(rows, row{"7", "milter messages/s", "—", "—", "—", "—", "not measured: BenchmarkMilterDaemon failed (see the log)"})
	}
	for _, n := range names {
		c := mb[n]
		rate := c["msgs/s"]
		if rate == 0 && c["ns/op"] > 0 {
			rate = 1e9 / c["ns/op"]
		}
		rows = append(rows, row{"7", "milter " + strings.TrimPrefix(n, "Benchmark") + ", 32 connections", fmt.Sprintf("%.0f msgs/s", rate),
			fmt.Sprintf("latency p50 %.1f ms, p90 %.1f ms, p99 %.1f ms", c["p50-µs"]/1e3, c["p90-µs"]/1e3, c["p99-µs"]/1e3), "—", "—", "—"})
	}
	return rows
}

// qmailRows are measurement 8: whole SMTP transactions through a real qmail-smtpd
// (e2e/qmail BenchmarkQmailTransaction), four setups interleaved in one run. Target: queue
// mode adds no more to plain qmail-queue than qmail-qfilter running cat does.
func qmailRows(dir string) []row {
	q := readGoBenches(filepath.Join(dir, "qmail.txt"))["BenchmarkQmailTransaction"]
	if q == nil || q["plain-p50-ms"] == 0 {
		return []row{missing("8", "SMTP transaction through qmail-smtpd", "qmail.txt")}
	}
	lat := func(s string) string { return fmt.Sprintf("%.2f ms (p90 %.2f ms)", q[s+"-p50-ms"], q[s+"-p90-ms"]) }
	plain := fmt.Sprintf("plain %.2f ms", q["plain-p50-ms"])
	added := func(s string) string { return fmt.Sprintf("+%.2f ms", q[s+"-added-ms"]) }
	return []row{
		{"8", "SMTP transaction through qmail-smtpd, 4 KB message: plain qmail-queue", lat("plain"), "", "", "", ""},
		{"8", "… queue mode (QMAILQUEUE = block-forged-sender-queue)", lat("queue"), plain, added("queue"),
			fmt.Sprintf("≤ qmail-qfilter + cat (+%.2f ms)", q["qfilter-cat-added-ms"]), verdict(q["queue-added-ms"] <= q["qfilter-cat-added-ms"])},
		{"8", "… qmail-qfilter + filter", lat("qfilter-filter"), plain, added("qfilter-filter"), "", ""},
		{"8", "… qmail-qfilter + cat", lat("qfilter-cat"), plain, added("qfilter-cat"), "", ""},
	}
}

func report(w io.Writer, dir string) {
	var rows []row
	rows = append(rows, perMessage(dir, "perf-1k.json", "1", "filter, 4 KiB message, 1,000 compiled rules", 1.5)...)
	rows = append(rows, perMessage(dir, "perf-10m.json", "2", "filter, 4 KiB message, 10,000,000 compiled rules", 1.5)...)
	rows = append(rows, throughput(dir, "thru-file.json", "3", "pass-through 1 GiB, file → filter → pipe"))
	rows = append(rows, throughput(dir, "thru-pipe.json", "3", "pass-through 1 GiB, pipe → filter → pipe"))
	rows = append(rows, rss(dir, "file", "3", "peak RSS, file → filter → pipe"))
	rows = append(rows, rss(dir, "pipe", "3", "peak RSS, pipe → filter → pipe"))
	rows = append(rows, perMessage(dir, "queue.json", "4", "queue mode, 4 KiB message, 1,000 rules, stand-in qmail-queue", 0)...)
	rows = append(rows, compile(dir))
	rows = append(rows, goRows(dir)...)
	rows = append(rows, qmailRows(dir)...)

	fmt.Fprintln(w, "| # | measurement | ours | baseline | ratio | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.num, r.what, r.ours, r.base, r.ratio, r.target, r.met)
	}
}
