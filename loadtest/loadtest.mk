# Load harness targets; the top-level Makefile includes this file.
# Runs stay short by default (a few seconds); override LOADTEST_FLAGS or
# call the command directly for the big comparisons:
#   go run ./loadtest/cmd/loadtest -h

GO ?= go
LOADTEST := $(GO) run ./loadtest/cmd/loadtest

# A short fleet: one spawned pushring peer (built from ./cmd/pushring),
# 200 edge nodes pushing 40 series every second for 5 s, then the
# completeness check.
LOADTEST_FLAGS ?= -spawn 1 -nodes 200 -interval 1s -jitter 100ms -duration 5s -check

# The same fleet against pushring and the real Pushgateway, one after the
# other, reported side by side.
LOADTEST_COMPARE_FLAGS ?= $(LOADTEST_FLAGS) -spawn-pushgateway

# Scrape cost and memory of 40k series (1,000 groups × 40) per target.
LOADTEST_SCRAPE_FLAGS ?= -mode scrape -spawn 1 -spawn-pushgateway -groups 1000 -series 40 -scrapes 10 -concurrency 8 -check

# Replication under load (issue 12): 3 spawned peers, 3,000 nodes pushing
# every 5 s through random live peers; the second peer is SIGKILLed 30 s
# in and started again 20 s later without a persistence file; 90 s of
# pushes, then the completeness check of the first scrape after them (add
# -check-wait 30s to see whether and when a failing check converges, and
# -work-dir DIR to keep the peers' logs).
LOADTEST_KILL_FLAGS ?= -spawn 3 -nodes 3000 -interval 5s -duration 90s -route random -kill-peer-after 30s -restart-after 20s -check

# pushbench: closed-loop pushes of one node's fixed body replayed by wrk
# (1,000 groups, 16 connections) into pushring, Debian's Pushgateway, the
# Pushgateway 1.11.5 (.ci/run builds it into ~/.cache/pushring-ci) and a
# handler that only reads the body: BENCHMARKS.md, "Performance".
PUSHBENCH_FLAGS ?= -targets pushring,pushgateway,pushgateway-current,floor -formats text,protobuf -duration 10s -rounds 2

.PHONY: loadtest loadtest-compare loadtest-scrape loadtest-kill pushbench

loadtest:
	$(LOADTEST) $(LOADTEST_FLAGS)

loadtest-compare:
	$(LOADTEST) $(LOADTEST_COMPARE_FLAGS)

loadtest-scrape:
	$(LOADTEST) $(LOADTEST_SCRAPE_FLAGS)

loadtest-kill:
	$(LOADTEST) $(LOADTEST_KILL_FLAGS)

pushbench:
	$(GO) build -o bin/pushring ./cmd/pushring
	$(GO) run ./loadtest/cmd/pushbench -pushring-bin bin/pushring $(PUSHBENCH_FLAGS)
