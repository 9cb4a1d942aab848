# greyd and greyctl as a container image: static binaries (CGO_ENABLED=0) on
# distroless/static (CA certificates, /etc/passwd with nonroot, no shell),
# running as the non-root user 65532. Needs the network for the base images
# and modules:
#   docker build -t ghcr.io/grey-distributed/greyd:dev .
# Offline, from binaries built here: `make image` (deploy/image/Containerfile,
# FROM scratch with buildah). docs/DEPLOY.md, "The image".
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/greyd ./cmd/greyd && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/greyctl ./cmd/greyctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/greyd /out/greyctl /
USER 65532:65532
EXPOSE 8080 7000 9090
ENTRYPOINT ["/greyd"]
