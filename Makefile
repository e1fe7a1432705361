# block-forged-sender: build, demo, tests, fuzzing and benchmarks.
GO      ?= go
BINDIR  ?= bin
BIN     := $(BINDIR)/block-forged-sender
CORPUS  ?= ../shared/corpus
# A count, not a duration: Go 1.26's fuzz coordinator can fail a target with a bare
# "context deadline exceeded" when a duration -fuzztime ends mid-run (go.dev/issue/75804,
# fixed in Go 1.27); an execution count has no deadline to race.
FUZZTIME ?= 500000x
# FuzzReaders runs every input through real mail readers (node, python, mutt processes):
# a few inputs a second, so it gets a count of its own (.ci/run passes a smaller one).
READERS_FUZZTIME ?= 5000x
PREFIX  ?= /usr/local
DESTDIR ?=
export CGO_ENABLED ?= 0
# The programs start at internal/rlimit's entry point, which runs before the Go runtime so
# that they work under qmail's softlimit (README, "Memory limits"). It exists for
# linux/amd64 and linux/arm64; the target is read from go env, so GOOS=... GOARCH=... (in
# the environment or on make's command line) cross-builds get it too.
TARGET  := $(shell GOOS=$(GOOS) GOARCH=$(GOARCH) $(GO) env GOOS GOARCH | paste -sd/ -)
LDFLAGS := $(if $(filter $(TARGET),linux/amd64 linux/arm64),-E=block-forged-sender/internal/rlimit.entry)

.PHONY: build demo test e2e check-format fuzz bench install clean

# The per-message program (with its queue-mode link) and the daemons it runs for its milter
# and sync commands, which live beside it.
build:
	$(GO) build -trimpath -ldflags='$(LDFLAGS)' -o $(BINDIR)/ ./cmd/...
	ln -sf block-forged-sender $(BINDIR)/block-forged-sender-queue

# Build, then run the filter on the example rules and messages, showing each verdict and why.
demo: build
	examples/run $(BIN)

# All tests: formatting, vet, unit and end-to-end tests with the race detector, and the
# shared corpus in filter mode (envelope from the environment, then from fd 3).
test: check-format build
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race -shuffle=on -count=1 ./...
	@if [ -x $(CORPUS)/run-corpus ]; then \
		$(CORPUS)/run-corpus $(BIN) && RUN_CORPUS_FD3=1 $(CORPUS)/run-corpus $(BIN); \
	elif [ -n "$$BFS_REQUIRE_TOOLS" ]; then \
		echo "corpus not found at $(CORPUS)" >&2; exit 1; \
	else echo "skipping the shared corpus: $(CORPUS) not found"; fi

# The end-to-end tests alone: a real, private Postfix and Sendmail (as root, with Debian's
# postfix and swaks) and a real notqmail qmail-smtpd built from ../shared/vendor (as root,
# with gcc, make, ucspi-tcp, daemontools); `make test` runs them too, and skips them without
# root or the tools.
e2e:
	CGO_ENABLED=1 $(GO) test -race -count=1 -v ./e2e/...

check-format:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# Every fuzz target for FUZZTIME each (500,000 executions by default), FuzzReaders for
# READERS_FUZZTIME. A finding fails the run, after the failing input is written under the
# package's testdata/fuzz, where go test runs it as a seed from then on. With
# FUZZ_FINDINGS=report every target runs to its end and the findings are listed instead,
# without failing: .ci/run does so, since a mutation run is random and a finding in it says
# nothing about the submission it tests (the seeds of every earlier finding run in make
# test, and fail it).
FUZZ_FINDINGS ?= fail
fuzz:
	@found=; for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			n=$(FUZZTIME); [ "$$t" = FuzzReaders ] && n=$(READERS_FUZZTIME); \
			echo "fuzz $$pkg $$t ($$n)"; \
			$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$$n -fuzzminimizetime=10x $$pkg && continue; \
			[ "$(FUZZ_FINDINGS)" = report ] || exit 1; \
			found="$$found $$pkg.$$t"; \
		done; \
	done; \
	if [ -n "$$found" ]; then \
		echo "fuzz: findings (reported, not failed: FUZZ_FINDINGS=report) in:$$found"; \
		git status --porcelain --untracked-files=all -- '*/testdata/fuzz/*' 2>/dev/null | \
			while read -r _ f; do echo "== $$f"; cat "$$f"; done; \
	else echo "fuzz: no findings"; fi

bench: build
	bench/run

# The programs, the block-forged-sender-queue link (for QMAILQUEUE), the manual page and the
# daemons' systemd units, their ExecStart naming the program under PREFIX
# ($(PREFIX)/lib/systemd/system: systemd reads /usr/local/lib/systemd/system and /usr/lib/...).
UNITS := block-forged-sender-milter.service block-forged-sender-sync.service
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 755 $(BIN) $(BINDIR)/block-forged-sender-milter $(BINDIR)/block-forged-sender-sync $(DESTDIR)$(PREFIX)/bin/
	ln -sf block-forged-sender $(DESTDIR)$(PREFIX)/bin/block-forged-sender-queue
	install -m 644 docs/block-forged-sender.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	for u in $(UNITS); do \
		sed 's|^ExecStart=/usr/local/bin/|ExecStart=$(PREFIX)/bin/|' contrib/$$u >$(DESTDIR)$(PREFIX)/lib/systemd/system/$$u && \
		chmod 644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$$u || exit 1; \
	done

clean:
	rm -rf bin
