# Grey's build and test entry points. `make test` is the README's test
# command and what CI (.ci/run) runs.

GO ?= go
export CGO_ENABLED ?= 1

.PHONY: build test unit fuzz-short services clean

build:
	$(GO) build -o bin/ ./cmd/...

# The whole suite: real services, unit + integration + end-to-end tests with
# the race detector, then a short run of every fuzz target.
test: build
	./scripts/test.sh

unit:
	$(GO) test ./...

fuzz-short:
	./scripts/fuzz.sh 10s

clean:
	rm -rf bin grey-data
