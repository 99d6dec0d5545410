# agentloop — developer and CI entry points. `make run` and `make test` are
# all a fresh machine needs.

GO        ?= go
PKGS      := ./...
BENCHTIME ?= 1s
COUNT     ?= 6
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.6.1
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

# The peers suite (ants, protoactor, channels beside agentloop) is a module
# of its own in bench/peers, and so is the headless-browser test of the flame
# graph page in browsertest (chromedp), so that their dependencies never reach
# the library's go.mod and the library's tests need no browser. After the
# library's go.mod changes, run go mod tidy in both too.
PEERSENV        = cd bench/peers && GOTOOLCHAIN=local GOWORK=off
BROWSERENV      = cd browsertest && GOTOOLCHAIN=local GOWORK=off
# The cluster package (NATS client and embedded server) is a module of its
# own too, so that the library's go.mod never gains NATS.
CLUSTERENV      = cd cluster && GOTOOLCHAIN=local GOWORK=off
PEERS_BENCHTIME ?= $(BENCHTIME)
# Each suite is built once and run COUNT times, each run a fresh process
# in which every benchmark and its baselines run one after the other: the
# runs take turns, so whatever else the machine does weighs on both alike.
BENCHRUN        = -test.run '^$$' -test.bench . -test.benchmem
BENCH_LIB       = $(GO) test -c -o bench.test ./bench/ && for i in $(shell seq $(COUNT)); do ./bench.test $(BENCHRUN) -test.benchtime $(BENCHTIME); done
BENCH_PEERS     = $(GO) test -c -o peers.test . && for i in $(shell seq $(COUNT)); do ./peers.test $(BENCHRUN) -test.benchtime $(PEERS_BENCHTIME); done
BENCH_PEERS_CMD = $(subst $(GO) test,$(PEERSENV) $(GO) test,$(BENCH_PEERS))
BENCHNOTE       ?= Figures from a shared, noisy 2-core VM: absolute numbers drift from run to run; ratios taken within one run are steadier.
# go test's own failure lines: a benchmark run piped into tee must still fail make.
BENCHFAILED     = grep -qE '^(FAIL|--- FAIL|panic:)'

.PHONY: run test vet race stress benchonce peers cluster-test cluster browser screenshots bench benchmarks lint profile flame browser-deps

## run: the IoT gateway simulation on its defaults
run:
	$(GO) run ./cmd/gateway

## test: vet, the race-enabled test suite, every benchmark once, the peers
## and cluster modules and the flame graph page in headless Chromium
test: vet race benchonce peers cluster-test browser

vet:
	$(GO) vet $(PKGS)

race:
	$(GO) test -race -count=1 $(PKGS)

## stress: the race suite three times over while two busy loops occupy the
## CPUs, as on a loaded machine (the library and the cluster module): no
## test may depend on CPU speed or share
stress:
	bash scripts/contend.sh 2 $(GO) test -race -count=3 $(PKGS)
	$(CLUSTERENV) bash ../scripts/contend.sh 2 $(GO) test -race -count=3 ./...

benchonce:
	$(GO) test -run '^$$' -bench . -benchtime 1x $(PKGS)
	$(PEERSENV) $(GO) test -run '^$$' -bench . -benchtime 1x ./...
	$(CLUSTERENV) $(GO) test -run '^$$' -bench . -benchtime 1x ./...

## cluster-test: vet and race-test the cluster module (three nodes on an
## embedded NATS server in one test process)
cluster-test:
	$(CLUSTERENV) $(GO) vet ./...
	$(CLUSTERENV) $(GO) test -race -count=1 ./...

## cluster: three gateway nodes as separate processes on an embedded NATS
## server on localhost, one killed with SIGKILL halfway; prints each node's
## live figures, the re-home time and the cluster-wide accounting
## (accepted = delivered + dead-lettered); CLUSTER_FLAGS for its flags
cluster:
	$(CLUSTERENV) $(GO) run ./cmd/clusterdemo $(CLUSTER_FLAGS)

## peers: vet and test the peers module (each implementation delivers what
## it counts; the report generator's verdicts)
peers:
	$(PEERSENV) $(GO) vet ./...
	$(PEERSENV) $(GO) test -count=1 ./...

## browser: vet and test the browsertest module: the flame graph page in
## headless Chromium, which browser-deps installs when it is missing
browser: browser-deps
	$(BROWSERENV) $(GO) vet ./...
	$(BROWSERENV) $(GO) test -race -count=1 ./...

## screenshots: the browser tests once more, writing their screenshots
## (the dashboard's, the flame graph's) to docs/img instead of a temporary
## directory; without -race, so that the pages show the engine's own pace
screenshots: browser-deps
	$(BROWSERENV) AGENTLOOP_SCREENSHOTS=$(CURDIR)/docs/img $(GO) test -count=1 ./...

## bench: the library and peers suites, COUNT runs each, summarised by
## benchstat, then BENCHMARKS.md regenerated from them
bench:
	$(BENCH_LIB) | tee bench.out
	@! $(BENCHFAILED) bench.out
	$(BENCH_PEERS_CMD) | tee ../../peers.out
	@! $(BENCHFAILED) peers.out
	$(GO) run $(BENCHSTAT) bench.out
	$(GO) run $(BENCHSTAT) -col /impl peers.out
	$(MAKE) benchmarks

## benchmarks: BENCHMARKS.md from the last bench.out and peers.out
benchmarks:
	$(PEERSENV) $(GO) run ./cmd/benchreport -o ../../BENCHMARKS.md -note "$(BENCHNOTE)" \
		-cmd "$(BENCH_LIB) | tee bench.out" \
		-cmd "(cd bench/peers && $(BENCH_PEERS) | tee ../../peers.out)" \
		$(addprefix ../../,$(wildcard bench.out peers.out))

## profile: the gateway on its embedded mix for PROFILE_DURATION with the
## profiler on all the time; writes profiles/flame.html, and fails if an
## agent type of PROFILE_TYPES took no CPU sample. The CPU profiler samples
## 100 times per second of CPU: the alert type of the mix uses about 1 µs per
## alert, a few hundred alerts a second, and so takes about 2 samples a
## minute; 3 minutes give it about 6, inference, the next rarest, some
## hundreds.
PROFILE_DURATION ?= 3m
PROFILE_TYPES    ?= device feature inference alert
profile:
	@mkdir -p profiles && rm -f profiles/cpu-*.pb.gz profiles/wall-*.pb.gz profiles/heap-*.pb.gz
	$(GO) run ./cmd/gateway -duration $(PROFILE_DURATION) -profile profiles -sampling 1
	@tags=$$($(GO) tool pprof -tags profiles/cpu-*.pb.gz 2>/dev/null); \
	for t in $(PROFILE_TYPES); do \
		echo "$$tags" | grep -q ": $$t\$$" || { echo "profile: agent type $$t took no CPU sample; try a longer PROFILE_DURATION"; exit 1; }; \
	done; echo "profile: every agent type ($(PROFILE_TYPES)) has CPU samples"

## flame: render any pprof file: make flame PROFILE=cpu.prof  ->  cpu.html
flame:
	$(GO) run ./cmd/agentloop flame $(PROFILE) -o $(basename $(PROFILE)).html

## lint: gofmt, vet and staticcheck must print nothing
lint:
	@out=$$(gofmt -s -l .); if [ -n "$$out" ]; then echo "gofmt -s needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	$(PEERSENV) $(GO) run $(STATICCHECK) ./...
	$(BROWSERENV) $(GO) run $(STATICCHECK) ./...
	$(CLUSTERENV) $(GO) run $(STATICCHECK) ./...

## browser-deps: Debian's chromium for the flame graph browser test
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
