#!/usr/bin/env bash
# Builds the greyd container image offline (what `make image` runs): static
# greyd and greyctl (CGO_ENABLED=0), then deploy/image/Containerfile FROM
# scratch with buildah (vfs storage, chroot isolation: no daemon, no root
# namespaces needed), and prints the image's digest and size.
#
#   scripts/image.sh [TAG]           TAG defaults to localhost/grey/greyd:dev
#
# GREY_IMAGE_BIN=DIR takes greyd and greyctl from DIR instead of building
# them; GREY_IMAGE_ARCHIVE=FILE also writes the image as an OCI archive.
# With the network, the Dockerfile at the root builds the same image on
# distroless/static instead (docker build .).
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/grey/greyd:dev}
command -v buildah >/dev/null || { echo "image.sh: buildah is not installed (apt-get install -y buildah), or use: docker build ." >&2; exit 2; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
if [ -n "${GREY_IMAGE_BIN:-}" ]; then
  cp "$GREY_IMAGE_BIN/greyd" "$GREY_IMAGE_BIN/greyctl" "$stage/"
else
  CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$stage/greyd" ./cmd/greyd
  CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$stage/greyctl" ./cmd/greyctl
fi
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] || { echo "image.sh: no CA bundle at $ca (apt-get install -y ca-certificates)" >&2; exit 2; }
cp "$ca" "$stage/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$stage/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$stage/group"
b() { buildah --storage-driver "${GREY_BUILDAH_DRIVER:-vfs}" "$@"; }
b bud --quiet --isolation chroot -f deploy/image/Containerfile -t "$tag" "$stage" >/dev/null
archive=${GREY_IMAGE_ARCHIVE:-$stage/image.tar}
b push --quiet --digestfile "$stage/digest" "$tag" "oci-archive:$archive" >/dev/null
echo "image:  $tag"
echo "digest: $(cat "$stage/digest")"
echo "size:   $(b images --format '{{.Size}}' "$tag" | head -1) uncompressed, $(du -h "$archive" | cut -f1) as an OCI archive (gzip layers); binaries $(du -ch "$stage/greyd" "$stage/greyctl" | tail -1 | cut -f1)"
