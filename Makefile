# crmslack: two commands on a fresh machine, `make run` and `make test`.
# Everything else here is what those two are made of.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BIN := $(CURDIR)/.bin
BUF := $(BIN)/buf
# Every module of the workspace, as package patterns.
PKGS = $(shell go list -m -f '{{.Dir}}/...')
# The contracts landed last; `buf breaking` compares the tree against them.
LANDED_REF := $(shell cat proto/LANDED 2>/dev/null)
# Benchmarks: override BENCH to pick, COUNT for benchstat samples.
BENCH ?= .
COUNT ?= 1

.PHONY: help
help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: run
# The runner is built, then exec'd: `go run` would exit 1 on Ctrl-C even when
# the runner exits 0, and make would report an error.
LOCAL_BIN ?= $(BIN)/crmslack-local

run: ## the whole stack on embedded NATS, FerretDB and the Slack stand-in
	go build -o $(LOCAL_BIN) ./deploy/local
	exec $(LOCAL_BIN)

.PHONY: packages
# Debian packages the tests run: chromium for the browser test (deploy/local),
# PostgreSQL under the distributed mode's FerretDB (deploy/cluster).
packages: ## install the Debian packages the tests use, when missing
	@missing=; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		echo "installing Debian packages:$$missing"; \
		$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

.PHONY: cluster cluster-test
# The distributed mode, each part its own process (deploy/cluster); built,
# then exec'd, as `make run` is.
CLUSTER_RUNNER ?= $(BIN)/crmslack-cluster

cluster: packages ## the distributed mode: 3 NATS nodes, FerretDB on PostgreSQL, the stand-in, two replicas of every service
	go build -o $(CLUSTER_RUNNER) ./deploy/cluster/cmd/cluster
	CLUSTER_BIN=$(BIN)/cluster exec $(CLUSTER_RUNNER)

cluster-test: ## the cluster's crash test at full size: 10,000 events, one replica of each service and a NATS node killed
	CLUSTER_EVENTS=10000 go test -count=1 -v -timeout 30m -run TestClusterExactlyOnceThroughCrashes ./deploy/cluster

.PHONY: test
test: packages proto-check vet ## vet, generated-code check and every module's tests with -race
	go test -race -count=1 -timeout 12m $(PKGS)

.PHONY: vet
vet: ## go vet and gofmt over every module
	@unformatted=$$(gofmt -l $$(go list -m -f '{{.Dir}}') | grep -v '/gen/go/' || true); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet $(PKGS)

.PHONY: bench
bench: ## benchmarks, benchstat-friendly (COUNT=6 make bench > new.txt)
	go test -run '^$$' -bench '$(BENCH)' -benchmem -count $(COUNT) -timeout 30m $(PKGS)

.PHONY: tools
tools: $(BUF) ## build buf and the protoc plugins from proto/tools (Go tool directives)

$(BUF): proto/tools/go.mod proto/tools/go.sum
	cd proto/tools && GOWORK=off GOBIN=$(BIN) go install tool
	@touch $(BUF)

.PHONY: proto
proto: tools ## format, lint and regenerate the Go code of the contracts
	cd proto && $(BUF) format -w && $(BUF) lint && $(BUF) generate

.PHONY: proto-check
proto-check: tools ## fail when contracts are unformatted, lint-dirty, breaking, or their generated code is stale
	cd proto && $(BUF) format --diff --exit-code && $(BUF) lint
	@if [ -z "$(LANDED_REF)" ]; then \
		echo "proto/LANDED names no commit: breaking-change check skipped"; \
	elif ! git cat-file -e '$(LANDED_REF)^{commit}' 2>/dev/null; then \
		echo "landed contracts $(LANDED_REF) not in this clone (shallow?): breaking-change check skipped"; \
	else \
		cd proto && $(BUF) breaking --against '../.git#ref=$(LANDED_REF),subdir=proto'; \
	fi
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	cd proto && $(BUF) generate --output $$tmp && \
	if ! diff -r gen $$tmp/gen > $$tmp/diff; then \
		head -40 $$tmp/diff; echo "generated code is stale: run make proto"; exit 1; \
	fi

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 20s)
	@for dir in $$(go list -m -f '{{.Dir}}'); do \
		(cd $$dir && for pkg in $$(go list ./...); do \
			for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
				go test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} $$pkg; \
			done; done); \
	done

.PHONY: clean
clean: ## remove built tools and local run data
	rm -rf $(BIN) .local
