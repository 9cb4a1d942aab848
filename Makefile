# Grey's build and test entry points. `make test` is the README's test
# command and what CI (.ci/run) runs.

GO ?= go
export CGO_ENABLED ?= 1

.PHONY: build test test-deploy test-peers image unit fuzz-short services clean

build:
	$(GO) build -o bin/ ./cmd/...

# The whole suite: real services, unit + integration + end-to-end tests with
# the race detector, then a short run of every fuzz target.
test: build
	./scripts/test.sh
	$(MAKE) test-deploy
	$(MAKE) test-peers

# The nested deploy module (its own go.mod keeps Helm and k8s.io out of
# greyd's): the Helm chart rendered with every values file and decoded
# strictly, the bad values it refuses, the rolling-upgrade drill on local
# processes, and the container image (with buildah).
test-deploy:
	cd deploy && $(GO) vet ./... && $(GO) test -count=1 -timeout 20m ./...

# The nested bench/peers module (River and Asynq stay out of greyd's go.mod):
# vet and unit tests only, seconds; the comparison itself is
# bench/peers/run.sh, run by hand.
test-peers:
	cd bench/peers && $(GO) vet ./... && $(GO) test -count=1 ./...

# The container image, built offline with buildah (scripts/image.sh); prints
# its digest and size. With the network: docker build . (Dockerfile).
image:
	./scripts/image.sh $(IMAGE)

unit:
	$(GO) test ./...

fuzz-short:
	./scripts/fuzz.sh 10s

clean:
	rm -rf bin grey-data
