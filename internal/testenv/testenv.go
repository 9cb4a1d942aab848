// Package testenv gates tests that need a real service (DESIGN.md §10).
//
// scripts/services.sh starts the services and `scripts/services.sh env`
// prints GREY_TEST_<NAME>_URL for each one that answers. A test asks for its
// service with ServiceURL; when the variable is unset the test is skipped,
// except under CI (CI=true), where a missing service is a failure.
package testenv

import (
	"os"
	"strings"
	"testing"
)

// EnvVar returns the environment variable that carries name's URL:
// "postgres" -> GREY_TEST_POSTGRES_URL, "otlp_query" -> GREY_TEST_OTLP_QUERY_URL.
func EnvVar(name string) string {
	n := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_", " ", "_").Replace(name))
	return "GREY_TEST_" + n + "_URL"
}

// InCI reports whether the tests run in CI (env CI=true, as CI systems set it).
func InCI() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("CI")))
	return v == "true" || v == "1" || v == "yes"
}

// ServiceURL returns the URL of the named test service from
// GREY_TEST_<NAME>_URL. When it is unset or empty it skips the test with the
// reason, or fails it when running in CI.
func ServiceURL(t testing.TB, name string) string {
	t.Helper()
	v := EnvVar(name)
	u := strings.TrimSpace(os.Getenv(v))
	if u != "" {
		return u
	}
	msg := v + " is not set: service " + name + " is not running " +
		"(start it with `scripts/services.sh up " + strings.SplitN(name, "_", 2)[0] +
		"` and `eval \"$(scripts/services.sh env)\"`)"
	if InCI() {
		t.Fatal("CI=true and " + msg)
		return ""
	}
	t.Skip(msg)
	return ""
}

// KeycloakRealm is the realm scripts/services.sh imports into the keycloak
// service (scripts/keycloak/grey-realm.json).
const KeycloakRealm = "grey"

// KeycloakIssuer returns the issuer URL of the keycloak service's grey
// realm, skipping (or, in CI, failing) the test like ServiceURL when the
// service is not running.
func KeycloakIssuer(t testing.TB) string {
	t.Helper()
	u := ServiceURL(t, "keycloak")
	if u == "" {
		return ""
	}
	return strings.TrimRight(u, "/") + "/realms/" + KeycloakRealm
}
