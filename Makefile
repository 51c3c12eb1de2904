GO ?= go
PKGS := ./...

.PHONY: all build test test-short bench fuzz vet fmt run

all: vet test build

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X github.com/prometheus/common/version.Version=$(VERSION) -X github.com/prometheus/common/version.Revision=$(REVISION)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o gateway ./cmd/gateway

run:
	$(GO) run ./cmd/gateway

# The README's test command; CI runs it with PUSHRING_REQUIRE_REAL=1 so the
# tests against the real Prometheus and Pushgateway cannot skip.
test:
	$(GO) test -race $(PKGS)

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

# Benchmarks of every hot path; figures go to BENCHMARKS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# A short coverage-guided run of each fuzz target.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseGroupingPath$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./ingest/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBody$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./ingest/
	$(GO) test -run '^$$' -fuzz '^FuzzGroupKey$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./ingest/

# Load harness targets: loadtest (short fleet run), loadtest-compare,
# loadtest-scrape.
include loadtest/loadtest.mk
