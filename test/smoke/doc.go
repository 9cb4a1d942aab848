// Package smoke holds one real round trip per test service (DESIGN.md §10),
// each with the client library Grey uses. Every test is gated by
// internal/testenv.ServiceURL: it skips when its GREY_TEST_<NAME>_URL is unset,
// and fails instead under CI=true. Start the services with
// `scripts/services.sh up` and export their URLs with
// `eval "$(scripts/services.sh env)"`.
package smoke
