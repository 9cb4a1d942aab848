// Package imagetest holds the test of Grey's container image: it builds
// the offline image (scripts/image.sh: deploy/image/Containerfile FROM
// scratch with buildah) and runs greyd in it as its non-root user. It has
// no code of its own.
package imagetest
