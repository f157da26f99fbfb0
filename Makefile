# weft's single entry point: `make help` lists the targets; CI runs
# `make test` (through .ci/run). Every tool the build needs beyond Go, gcc,
# git, make and apt is installed by `make tools`, pinned, and only when it
# is missing.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

GO ?= go
BIN := $(CURDIR)/bin
# Tools built into bin/ come first for every recipe, tests included.
export PATH := $(BIN):$(PATH)

# --- Tools -----------------------------------------------------------------
#
# Go tools are pinned by `tool` directives in tools/go.mod, a module of its
# own so that their dependencies stay out of weft's go.mod. To add one:
#     cd tools && go get -tool example.com/foo/cmd/foo@vX.Y.Z
# and it is built into bin/foo by `make tools`; nothing here changes.
GO_TOOLS := $(shell awk '/^tool \($$/ { t = 1; next } t && /^\)/ { t = 0 } t { print $$1 } /^tool [^()]/ { print $$2 }' tools/go.mod)
GO_TOOL_BINS := $(addprefix $(BIN)/,$(notdir $(GO_TOOLS)))

# Debian packages, as FILE=PACKAGE: PACKAGE is installed (apt-get, as root)
# when FILE is missing. Debian 12 fixes their versions; a version that the
# output depends on is also checked below (PROTOC_VERSION). To add one,
# add a line.
APT_TOOLS := \
	/usr/bin/protoc=protobuf-compiler \
	/usr/include/google/protobuf/duration.proto=libprotobuf-dev \
	/usr/bin/clang=clang \
	/usr/bin/wasm-ld=lld \
	/usr/include/wasm32-wasi/stdlib.h=wasi-libc \
	/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a=libclang-rt-14-dev-wasm32 \
	/usr/bin/wat2wasm=wabt \
	/usr/bin/curl=curl \
	/usr/bin/lintian=lintian \
	/usr/bin/systemd-analyze=systemd \
	/usr/bin/deb-systemd-helper=init-system-helpers \
	/usr/sbin/adduser=adduser

PROTOC := /usr/bin/protoc
PROTOC_VERSION := 3.21.12
# Where google/protobuf/*.proto live (package libprotobuf-dev).
PROTO_INCLUDE := /usr/include
export PROTOC PROTO_INCLUDE

# Wasm guests in C (clang 14 of Debian 12 targets wasm32-wasi with lld,
# wasi-libc and the wasm32 compiler-rt above) and in WAT. Scripts and tests
# read $CLANG and $WAT2WASM, falling back to `clang` and `wat2wasm`.
CLANG := /usr/bin/clang
CLANG_VERSION := 14.0.6
WAT2WASM := /usr/bin/wat2wasm
export CLANG WAT2WASM

# Where `make build` puts the example packages (one directory each).
EXAMPLES_OUT := build/examples

.PHONY: tools
tools: apt-tools $(GO_TOOL_BINS) ## install the pinned tools: Debian packages, and tools/go.mod's into bin/

.PHONY: apt-tools
apt-tools:
	@bash scripts/apt-install.sh $(APT_TOOLS)
	@v=$$($(PROTOC) --version); [[ $$v == "libprotoc $(PROTOC_VERSION)" ]] || \
		{ echo "tools: $(PROTOC) is '$$v', want libprotoc $(PROTOC_VERSION) (Debian 12's protobuf-compiler)" >&2; exit 1; }
	@v=$$($(CLANG) -dumpversion); [[ $$v == $(CLANG_VERSION) ]] || \
		{ echo "tools: $(CLANG) is clang $$v, want $(CLANG_VERSION) (Debian 12's, which the wasm32 compiler-rt above is for)" >&2; exit 1; }

# One `go build` makes them all (in parallel, sharing the build cache); it
# runs again only when tools/go.mod or tools/go.sum changes or a binary is
# missing.
$(GO_TOOL_BINS) &: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(BIN)/ tool
	@touch $(GO_TOOL_BINS)

# --- Build -----------------------------------------------------------------

# The version the commands report: the Debian package's upstream version
# (packaging/deb/VERSION plus the commit), as make deb stamps it.
VERSION = $(shell v=$$(bash packaging/deb/build.sh --print-version 2>/dev/null) && echo "$${v%-*}" || echo dev)
VERSION_LDFLAGS = -X main.version=$(VERSION) -X github.com/weftos/weft/cmd/weft/cli.Version=$(VERSION)

.PHONY: build
build: apt-tools ## build every package, the commands under cmd/ into bin/, the in-tree drivers into bin/drivers/, and the examples
	$(GO) build ./...
ifneq ($(wildcard cmd/*/*.go),)
	$(GO) build -ldflags "$(VERSION_LDFLAGS)" -o $(BIN)/ ./cmd/...
	@bash scripts/build-drivers.sh $(BIN)/drivers
else
	@echo "build: no commands under cmd/ yet"
endif
	@bash scripts/build-examples.sh $(EXAMPLES_OUT)

.PHONY: examples
examples: apt-tools ## build every example under examples/ into a package directory in build/examples/
	@bash scripts/build-examples.sh $(EXAMPLES_OUT)

# `make run`'s node: its data and socket in ./.weft, every example
# installed (a no-op when that version already is). RUN_FLAGS adds weftd
# flags, e.g. make run RUN_FLAGS="--log-level debug". The node listens
# for other nodes on a free TCP port of 127.0.0.1 (weft status shows it),
# so that it never takes an installed node's port 9047 nor shows itself
# beyond the machine; RUN_P2P_LISTEN="/ip4/0.0.0.0/tcp/9047" or "none"
# chooses otherwise.
RUN_DIR := ./.weft
RUN_FLAGS ?=
RUN_P2P_LISTEN ?= /ip4/127.0.0.1/tcp/0

.PHONY: run
run: build ## build everything and run a node in the foreground (./.weft) with the examples installed
	@install=(); for d in $(EXAMPLES_OUT)/*/; do install+=(--install "$${d%/}"); done; \
	exec $(BIN)/weftd --data-dir $(RUN_DIR) --socket $(RUN_DIR)/weftd.sock --drivers-dir $(BIN)/drivers --p2p-listen $(RUN_P2P_LISTEN) "$${install[@]}" $(RUN_FLAGS)

# A local S3 server for make run's backups (docs/backup.md, "Trying it
# with make run"): versitygw on 127.0.0.1:7070, bucket "weft" in
# ./.weft-s3, with development keys that only suit a laptop.
RUN_S3_DIR := ./.weft-s3
RUN_S3_ADDR ?= 127.0.0.1:7070

.PHONY: run-s3
run-s3: tools ## run a local S3 server (versitygw, bucket "weft" in ./.weft-s3) in the foreground for make run's backups
	@mkdir -p $(RUN_S3_DIR)/weft
	ROOT_ACCESS_KEY_ID=weft-dev ROOT_SECRET_ACCESS_KEY=weft-dev-secret \
		exec $(BIN)/versitygw --port $(RUN_S3_ADDR) --region us-east-1 posix $(RUN_S3_DIR)

.PHONY: generate
generate: tools ## regenerate the Go code under api/ from api/proto
	@bash scripts/generate.sh

.PHONY: check-generate
check-generate: tools ## fail if the generated code under api/ is not current
	@bash scripts/generate.sh --check

# --- Checks ----------------------------------------------------------------

.PHONY: lint
lint: ## gofmt every Go file (tracked or not), go vet every package, and the Wasm guests for GOOS=wasip1
	@bash scripts/gofmt-check.sh
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./sdk/go/... ./examples/... ./procstore/testdata/goprobe ./sdk/go/e2e/testdata/probe

fuzz-smoke test: FUZZTIME ?= 20000x
fuzz: FUZZTIME ?= 1000000x

.PHONY: test
test: tools check-generate lint check-packaging ## what CI runs: tools, check-generate, lint, check-packaging, go test -race, fuzz-smoke
	@out=$$(mktemp); trap 'rm -f "$$out"' EXIT; \
	$(GO) test -race -count=1 ./... 2>&1 | tee "$$out"; \
	bash scripts/fuzz.sh $(FUZZTIME); \
	ok=$$(grep -c '^ok ' "$$out" || true); none=$$(grep -c '^? ' "$$out" || true); \
	echo "make test: OK: tools, check-generate, lint, check-packaging, go test -race ($$none packages without tests), fuzz-smoke"; \
	echo "packages: $$ok passed, 0 failed"

.PHONY: fuzz-smoke
fuzz-smoke: tools ## fuzz every Fuzz target briefly (FUZZTIME=20000x executions each)
	@bash scripts/fuzz.sh $(FUZZTIME)

.PHONY: fuzz
fuzz: tools ## fuzz every Fuzz target for longer (FUZZTIME=1000000x executions each)
	@bash scripts/fuzz.sh $(FUZZTIME)

.PHONY: soak
soak: ## kill-and-reopen the store many more times than make test does (SOAK_KILLS, default 1000)
	WEFT_CRASH_KILLS=$(SOAK_KILLS) WEFT_KV_CRASH_KILLS=$(SOAK_KILLS) WEFT_DRIVE_CRASH_KILLS=$(SOAK_KILLS) WEFT_NODE_CRASH_KILLS=$(SOAK_KILLS) \
		$(GO) test -run 'Crash' -count=1 -timeout 60m -v ./store

SOAK_KILLS ?= 1000

.PHONY: bench
bench: tools ## run every benchmark once, with allocations (the Wasm ones build their guests with clang and wat2wasm)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

# --- Debian package --------------------------------------------------------
#
# packaging/deb/build.sh builds it with dpkg-deb; scripts/check-packaging.sh
# lints it, checks the unit, and installs, runs, upgrades and purges it on
# this machine (as root), leaving the machine as it was.

.PHONY: deb
deb: ## build the Debian package (weftd, weft, the systemd unit, the config) into dist/
	@bash packaging/deb/build.sh

.PHONY: check-packaging
check-packaging: apt-tools ## build the .deb; lintian, systemd-analyze; install, run, upgrade, purge it here (root)
	@bash scripts/check-packaging.sh --preflight
	@deb=$$(bash packaging/deb/build.sh | tail -1); bash scripts/check-packaging.sh "$$deb"

# --- Housekeeping ----------------------------------------------------------

.PHONY: clean
clean: ## remove bin/, build/ and dist/ (not ./.weft nor ./.weft-s3, the node data and bucket of `make run`)
	rm -rf $(BIN) build dist

.PHONY: help
help: ## list the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-15s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
