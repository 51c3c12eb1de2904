GO ?= go
PKGS := ./...

.PHONY: all build release image test test-short bench fuzz vet fmt run

all: vet test build

# The version: the release tag (v0.1.0 -> 0.1.0) on a tagged commit, else
# the tag it follows with the commits since (0.1.0-3-gabcdef012345), else
# the next version from VERSION with the commit (0.1.0-dev+abcdef012345);
# "-dirty" or "+dirty" marks a modified tree.
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --abbrev=12 --dirty 2>/dev/null | sed 's/^v//')
ifeq ($(VERSION),)
VERSION := $(shell cat VERSION)-dev+$(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo .dirty)
endif
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
BRANCH ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null)
# The commit's date, not the clock's, so that two builds of one commit are
# byte for byte the same.
BUILD_DATE ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d-%H:%M:%S 2>/dev/null)
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildDate=$(BUILD_DATE)

# The command's package; the binary is named pushring whatever its directory.
CMD := ./cmd/pushring

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o pushring $(CMD)

# Release binaries, reproducible: no cgo, no paths of this machine
# (-trimpath), no build id or VCS stamp that differs between checkouts,
# a build date taken from the commit. Two runs on one commit give the same
# SHA256SUMS; docs/release.md says how to check a published one.
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
DIST ?= dist

release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	for p in $(RELEASE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -buildvcs=false \
			-ldflags "-buildid= $(LDFLAGS)" \
			-o $(DIST)/pushring-$(VERSION)-$$os-$$arch $(CMD) || exit 1; \
	done
	cd $(DIST) && sha256sum pushring-* > SHA256SUMS
	cat $(DIST)/SHA256SUMS

# The container image, from the Dockerfile, with the same stamps.
IMAGE ?= pushring
image:
	docker build -t $(IMAGE):$(VERSION) --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
		--build-arg BRANCH=$(BRANCH) --build-arg BUILD_DATE=$(BUILD_DATE) .

run:
	$(GO) run $(CMD)

# The README's test commands; CI runs them with PUSHRING_REQUIRE_REAL=1 so
# the tests against the real Prometheus and Pushgateway cannot skip. deploy/
# is a module of its own (the manifests' and the Helm chart's tests, with
# kustomize and Helm as dependencies), which ./... does not reach.
test:
	$(GO) test -race $(PKGS)
	cd deploy && $(GO) test -race ./...

vet:
	$(GO) vet $(PKGS)
	cd deploy && $(GO) vet ./...
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
	$(GO) test -run '^$$' -fuzz '^FuzzRenderMatchesReference$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./store/
	$(GO) test -run '^$$' -fuzz '^FuzzParseTextFloat$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./store/

# Load harness targets: loadtest (short fleet run), loadtest-compare,
# loadtest-scrape, loadtest-kill (a peer killed and restarted under a fleet),
# pushbench (push throughput beside the Pushgateway and a floor handler).
include loadtest/loadtest.mk
