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

.PHONY: loadtest loadtest-compare loadtest-scrape

loadtest:
	$(LOADTEST) $(LOADTEST_FLAGS)

loadtest-compare:
	$(LOADTEST) $(LOADTEST_COMPARE_FLAGS)

loadtest-scrape:
	$(LOADTEST) $(LOADTEST_SCRAPE_FLAGS)
