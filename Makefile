# Pillarbox build and test targets. `make test` is what CI runs.
GO ?= go
PKGS := ./...

.PHONY: build test test-short lint vet fuzz bench clean

build:
	$(GO) build -o bin/pillarbox ./cmd/pillarbox

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0

# The whole suite: vet, staticcheck, then every test with the race detector.
test: lint
	$(GO) test -race -timeout 12m -count=1 $(PKGS)

lint:
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

# Run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench:
	bash bench/smtp.sh

clean:
	rm -rf bin
