# agentloop — developer and CI entry points. `make run` and `make test` are
# all a fresh machine needs.

GO        ?= go
PKGS      := ./...
BENCHTIME ?= 1s
COUNT     ?= 6
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@2025.1.1
BENCHSTAT   := golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

.PHONY: run test vet race benchonce bench lint profile flame browser-deps

## run: the IoT gateway simulation on its defaults
run:
	$(GO) run ./cmd/gateway

## test: vet, the race-enabled test suite, and every benchmark once
test: browser-deps vet race benchonce

vet:
	$(GO) vet $(PKGS)

race:
	$(GO) test -race -count=1 $(PKGS)

benchonce:
	$(GO) test -run '^$$' -bench . -benchtime 1x $(PKGS)

## bench: the workload suites, COUNT runs each, summarised by benchstat
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(COUNT) ./bench/ | tee bench.out
	$(GO) run $(BENCHSTAT) bench.out

## profile: run the gateway with the profiler on; writes profiles/flame.html
profile:
	$(GO) run ./cmd/gateway -duration 10s -profile profiles -sampling 0.2

## flame: render any pprof file: make flame PROFILE=cpu.prof  ->  cpu.html
flame:
	$(GO) run ./cmd/agentloop flame $(PROFILE) -o $(basename $(PROFILE)).html

## lint: gofmt, vet and staticcheck must print nothing
lint:
	@out=$$(gofmt -s -l .); if [ -n "$$out" ]; then echo "gofmt -s needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## browser-deps: Debian's chromium for the flame graph browser test
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
