package rules

import (
	"fmt"
	"hash/maphash"
	"io"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// The warnings. A compile that succeeds may still hold lines that are probably not what
// was meant; they are reported, and the list is used all the same:
//
//   - a block entry whose key an earlier block entry has: it is never used (the earlier
//     one decides, with its reason); an exception with the key and the scopes of an
//     earlier exception;
//   - a conflict: an exception without scopes that covers every address a block entry
//     matches (!@x and @x, !@x and u@x, !.x and anything under x): the block entry never
//     applies;
//   - an exception that no block entry needs: no address it matches is matched by any
//     block entry. An address A is matched by a pattern P when P is one of [Probes](A);
//     an exception is needed when some address is matched both by it and by a block
//     entry. So u@h needs a block entry u@h, @h or .p for a parent p of h; @h needs @h,
//     .p for a parent p of h, or any u@h; .h needs .h, .p for a parent p of h, or any
//     entry (u@d, @d, .d) for a domain d under h;
//   - a reason that qmail's custom-error reply cannot carry as it is: it is sent as
//     "D" + reason + " (#5.7.1)" in at most 255 bytes, with every byte outside printable
//     ASCII turned into a space, so a reason over 245 bytes is cut and a non-ASCII one
//     garbled (the log keeps it whole).
//
// Entries that a :rcpthosts line gives take part as block entries (an exception they
// need is needed), but are not reported as repeated or cancelled: protecting every hosted
// domain and excepting some addresses or one domain is what the line is for.
//
// The cost stays small on a large list. Each block entry adds 8 bytes to an index (48
// bits of a hash of its key and its line number) and nothing else; exceptions, usually
// few, are kept whole. Repeated keys are found by sorting the index, and confirmed by
// reading those lines of the text again. Whether an exception is needed is first asked
// of the index for the exact keys above; only an exception the index leaves open (an @h or
// .h that no exact key serves), or an exception without scopes for a domain, makes one
// more pass over the compiled records. A list of more than 2^28 lines is not analysed.

// replyMax is the longest reason qmail's custom-error reply carries whole: 255 bytes
// less "D" and " (#5.7.1)".
const replyMax = 255 - len("D") - len(" (#5.7.1)")

const (
	idxLineBits = 28
	idxMaxLine  = 1<<idxLineBits - 1
	idxHashBits = 64 - idxLineBits // kept in an element, below the bucket's bits
	idxChunk    = 1 << 15
)

// blockIndex holds, for each block entry, a hash of its key and its line. While the text
// is read they are appended to two arrays (in chunks, so that growing copies nothing),
// which costs a few nanoseconds a line; [finish] then spreads them by the hash's top bits
// into buckets of about 16 elements (2^4 to 2^16 buckets) in one array, each element 36
// more bits of the hash and the line. A bucket is searched by reading it through.
type blockIndex struct {
	seed   maphash.Seed
	hashes [][]uint64
	lines  [][]uint32
	n      int
	over   bool // a line past idxMaxLine: the index is incomplete

	bits  int      // after finish: the buckets are the hash's top bits
	elems []uint64 // the buckets, one after the other
	start []int    // bucket i is elems[start[i]:start[i+1]]
}

func (x *blockIndex) add(key []byte, line int) {
	if line > idxMaxLine {
		x.over = true
		return
	}
	if x.n%idxChunk == 0 {
		x.hashes = append(x.hashes, make([]uint64, 0, idxChunk))
		x.lines = append(x.lines, make([]uint32, 0, idxChunk))
	}
	c := len(x.hashes) - 1
	x.hashes[c] = append(x.hashes[c], maphash.Bytes(x.seed, key))
	x.lines[c] = append(x.lines[c], uint32(line))
	x.n++
}

// split returns the bucket of a hash and the bits an element keeps of it.
func (x *blockIndex) split(h uint64) (bucket int, rest uint64) {
	return int(h >> (64 - x.bits)), h << x.bits >> (64 - idxHashBits)
}

// finish spreads the entries into their buckets.
func (x *blockIndex) finish() {
	x.bits = min(max(bits.Len(uint(x.n))-4, 4), 16)
	count := make([]int, 1<<x.bits)
	for _, c := range x.hashes {
		for _, h := range c {
			count[h>>(64-x.bits)]++
		}
	}
	x.start = make([]int, len(count)+1)
	for i, n := range count {
		x.start[i+1] = x.start[i] + n
	}
	next := count
	copy(next, x.start)
	x.elems = make([]uint64, x.n)
	for c, hs := range x.hashes {
		for i, h := range hs {
			b, rest := x.split(h)
			x.elems[next[b]] = rest<<idxLineBits | uint64(x.lines[c][i])
			next[b]++
		}
	}
	x.hashes, x.lines = nil, nil
}

// has reports whether a block entry may have key: a false yes is rare (2^-40 a key at
// most, and it only keeps back a warning). The index must be finished.
func (x *blockIndex) has(key string) bool {
	b, rest := x.split(maphash.String(x.seed, key))
	for _, e := range x.elems[x.start[b]:x.start[b+1]] {
		if e>>idxLineBits == rest {
			return true
		}
	}
	return false
}

// repeated returns, sorted, the lines of the entries whose hash another entry shares.
// It finds them bucket by bucket with a small open-addressing table.
func (x *blockIndex) repeated() []int {
	var lines []int
	var table []uint64 // element + 1; 0 is empty
	for b := range len(x.start) - 1 {
		bucket := x.elems[x.start[b]:x.start[b+1]]
		if len(bucket) < 2 {
			continue
		}
		size := 4
		for size < 2*len(bucket) {
			size *= 2
		}
		if cap(table) < size {
			table = make([]uint64, size)
		}
		table = table[:size]
		clear(table)
		mask := uint64(size - 1)
		for _, e := range bucket {
			rest := e >> idxLineBits
			for j := rest & mask; ; j = (j + 1) & mask {
				if table[j] == 0 {
					table[j] = e + 1
					break
				}
				if old := table[j] - 1; old>>idxLineBits == rest {
					lines = append(lines, int(old&idxMaxLine), int(e&idxMaxLine))
					break
				}
			}
		}
	}
	slices.Sort(lines)
	return slices.Compact(lines)
}

// exception is an exception entry, kept whole for the analysis.
type exception struct {
	entry, key string
	line       int
	scopes     string // canonical scopes, for repeats; "" when there are none
	needed     bool
	cancels    int // block entries it cancels
	cancelLine int // the first of them
}

// warnList keeps the first MaxWarnings warnings of one kind, which come in line order,
// and counts the rest.
type warnList struct {
	list []warnAt
	n    int
}

// warnAt is a warning and the line of the rules text it belongs to, for the order.
type warnAt struct {
	at int
	w  Warning
}

// addf adds a warning, formatting its message only when the list has room for it.
func (l *warnList) addf(at int, file string, line int, format string, args ...any) {
	if len(l.list) < MaxWarnings {
		l.list = append(l.list, warnAt{at, Warning{file, line, fmt.Sprintf(format, args...)}})
	}
	l.n++
}

func (l *warnList) add(at int, w Warning) {
	if len(l.list) < MaxWarnings {
		l.list = append(l.list, warnAt{at, w})
	}
	l.n++
}

// mergeWarnings returns the first MaxWarnings warnings of all lists in line order, and
// how many more there are.
func mergeWarnings(lists ...*warnList) ([]Warning, int) {
	var all []warnAt
	total := 0
	for _, l := range lists {
		all = append(all, l.list...)
		total += l.n
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at < all[j].at })
	if len(all) > MaxWarnings {
		all = all[:MaxWarnings]
	}
	out := make([]Warning, len(all))
	for i, w := range all {
		out[i] = w.w
	}
	return out, total - len(out)
}

// reasonWarning returns the warning for a reason the reply cannot carry, or "".
func reasonWarning(reason []byte) string {
	if len(reason) > replyMax {
		return fmt.Sprintf("the reason is %d bytes long: qmail's reply to the client carries %d (it is sent as \"D\" + reason + \" (#5.7.1)\" in at most 255), so the client sees it cut", len(reason), replyMax)
	}
	for _, c := range reason {
		if c >= utf8.RuneSelf {
			return "the reason is not ASCII: qmail's reply to the client turns every byte outside printable ASCII into a space (the log keeps it whole)"
		}
	}
	return ""
}

// recordSet is the compiled records, asked by the analysis: a CDB or the in-memory map.
type recordSet interface {
	lookup(key string, fn func(val []byte) bool) error
	forEach(fn func(key, val []byte) error) error
}

// keyKind returns the kind of a canonical key ('u' for user@host, '@' or '.') and its
// domain.
func keyKind(k string) (byte, string) {
	switch {
	case k == "":
		return 'u', ""
	case k[0] == '.':
		return '.', k[1:] // a .host key holds no '@'
	case k[0] == '@' && strings.IndexByte(k[1:], '@') < 0:
		return '@', k[1:]
	}
	return 'u', k[strings.LastIndexByte(k, '@')+1:]
}

// parents calls fn for each parent domain of d (a.b.example gives b.example, example);
// a domain literal has none. It stops when fn returns false.
func parents(d string, fn func(p string) bool) {
	if d == "" || d[0] == '[' {
		return
	}
	for j := 0; j < len(d); j++ {
		if d[j] == '.' && j+1 < len(d) && !fn(d[j+1:]) {
			return
		}
	}
}

// valueLine returns whether an encoded value is an exception, and its line.
func valueLine(v []byte) (except bool, line int, ok bool) {
	d := decoder{b: v}
	except = d.header()
	l := d.uvarint()
	return except, int(l), !d.bad
}

// lint finds the warnings of a compiled list. recs are its records; text rereads the
// rules text (for the lines that repeat a key).
func (b *builder) lint(recs recordSet, text io.Reader) error {
	if b.idx.over {
		return nil
	}
	b.idx.finish()
	fromHosts := func(line int) bool { _, ok := slices.BinarySearch(b.hostLines, line); return ok }

	// Repeated block entries: the index gives the candidates, the text their keys.
	if lines := b.idx.repeated(); len(lines) > 0 {
		lines = slices.DeleteFunc(lines, fromHosts)
		keys, err := lineKeys(text, b.file, lines)
		if err != nil {
			return err
		}
		first := map[string]int{}
		for _, line := range lines {
			e, ok := keys[line]
			if !ok {
				continue
			}
			if f, seen := first[e.key]; seen {
				b.dups.addf(line, b.file, line, "\"%s\" repeats the block entry on line %d (%s): this line is never used", e.entry, f, e.key)
			} else {
				first[e.key] = line
			}
		}
	}

	// Exceptions: repeats, then the exact keys the index answers.
	seen := map[string]int{}
	undetAt, undetDot := map[string][]int{}, map[string][]int{}
	unscAt, unscDot := map[string][]int{}, map[string][]int{}
	var probes []string
	for i := range b.excs {
		e := &b.excs[i]
		if f, ok := seen[e.key+"\x00"+e.scopes]; ok {
			b.excWarn.addf(e.line, b.file, e.line, "\"%s\" repeats the exception on line %d", e.entry, f)
			e.needed = true // said once is enough
			continue
		}
		seen[e.key+"\x00"+e.scopes] = e.line
		kind, dom := keyKind(e.key)
		switch kind {
		case 'u':
			probes = Probes(probes[:0], e.key)
		default:
			probes = append(probes[:0], e.key)
			parents(dom, func(p string) bool { probes = append(probes, "."+p); return true })
		}
		for _, p := range probes {
			if b.idx.has(p) {
				e.needed = true
				break
			}
		}
		if !e.needed {
			switch kind {
			case '@':
				undetAt[dom] = append(undetAt[dom], i)
			case '.':
				undetDot[dom] = append(undetDot[dom], i)
			}
		}
		if e.scopes != "" {
			continue
		}
		if b.idx.has(e.key) {
			err := recs.lookup(e.key, func(v []byte) bool {
				if except, line, ok := valueLine(v); ok && !except && !fromHosts(line) {
					e.cancels++
					if e.cancelLine == 0 || line < e.cancelLine {
						e.cancelLine = line
					}
				}
				return true
			})
			if err != nil {
				return err
			}
		}
		switch kind {
		case '@':
			unscAt[dom] = append(unscAt[dom], i)
		case '.':
			unscDot[dom] = append(unscDot[dom], i)
		}
	}

	// One pass over the records for what the exact keys left open.
	if len(undetAt)+len(undetDot)+len(unscAt)+len(unscDot) > 0 {
		mark := func(m map[string][]int, d string) {
			for _, i := range m[d] {
				b.excs[i].needed = true
			}
			delete(m, d)
		}
		cancel := func(m map[string][]int, d string, line int) {
			for _, i := range m[d] {
				e := &b.excs[i]
				e.cancels++
				if e.cancelLine == 0 || line < e.cancelLine {
					e.cancelLine = line
				}
			}
		}
		err := recs.forEach(func(k, v []byte) error {
			if string(k) == metaKey {
				return nil
			}
			except, line, ok := valueLine(v)
			if !ok || except {
				return nil
			}
			kind, dom := keyKind(string(k))
			hosts := fromHosts(line)
			if kind == 'u' {
				mark(undetAt, dom)
				if !hosts {
					cancel(unscAt, dom, line)
				}
			}
			parents(dom, func(p string) bool {
				mark(undetDot, p)
				if !hosts {
					cancel(unscDot, p, line)
				}
				return true
			})
			return nil
		})
		if err != nil {
			return err
		}
	}

	for i := range b.excs {
		e := &b.excs[i]
		switch {
		case e.cancels == 1:
			b.excWarn.addf(e.line, b.file, e.line, "exception \"%s\" has no scope, so the block entry on line %d never applies", e.entry, e.cancelLine)
		case e.cancels > 1:
			b.excWarn.addf(e.line, b.file, e.line, "exception \"%s\" has no scope, so %d block entries (the first on line %d) never apply", e.entry, e.cancels, e.cancelLine)
		}
		if !e.needed {
			b.excWarn.addf(e.line, b.file, e.line, "exception \"%s\" is not needed: no block entry matches any address it matches", e.entry)
		}
	}
	return nil
}

// lineEntry is an entry as written and its key.
type lineEntry struct{ entry, key string }

// lineKeys reads the rules text again and returns the entries of the given lines, which
// are sorted.
func lineKeys(text io.Reader, file string, lines []int) (map[int]lineEntry, error) {
	out := make(map[int]lineEntry, len(lines))
	lr := newLineReader(text)
	var f fastRule
	for len(lines) > 0 {
		b, long, ok, err := lr.next()
		if err != nil {
			return nil, fmt.Errorf("rules: read %s: %w", file, err)
		}
		if !ok {
			break
		}
		if long || lr.line != lines[0] {
			continue
		}
		lines = lines[1:]
		if parseFast(b, &f) {
			out[lr.line] = lineEntry{string(f.entry), string(f.key)}
		} else if r, d, msg := parseLine(b); msg == "" && d == nil && r.Entry != "" {
			out[lr.line] = lineEntry{r.Entry, r.Key}
		}
	}
	return out, nil
}

// scopesKey is the canonical form of an exception's scopes, the same whatever their
// order.
func scopesKey(r *Rule) string {
	if len(r.Rcpts)+len(r.Clients) == 0 {
		return ""
	}
	rc, cl := slices.Clone(r.Rcpts), slices.Clone(r.Clients)
	slices.Sort(rc)
	slices.Sort(cl)
	return strings.Join(rc, " ") + "\x00" + strings.Join(cl, " ")
}
