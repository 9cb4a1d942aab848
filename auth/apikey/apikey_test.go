package apikey

import (
	"strings"
	"testing"
	"time"

	"github.com/grey-distributed/grey/auth"
	"github.com/grey-distributed/grey/greyerr"
)

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	tok, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	s := tok.String()
	if len(s) != TokenLen || !strings.HasPrefix(s, "grey_"+tok.ID+"_") {
		t.Fatalf("token %q: want grey_<id>_<secret> of %d characters", s, TokenLen)
	}
	got, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(Generate()): %v", err)
	}
	if got.ID != tok.ID || string(got.Secret) != string(tok.Secret) {
		t.Fatalf("Parse = %+v, want %+v", got, tok)
	}
	k := &Key{ID: tok.ID, SecretHash: tok.Hash()}
	if !got.Matches(k) {
		t.Error("a token does not match its own hash")
	}
	other, _ := Generate()
	if other.ID == tok.ID || string(other.Secret) == string(tok.Secret) {
		t.Error("two generated tokens share an id or a secret")
	}
	other.ID = tok.ID
	if other.Matches(k) {
		t.Error("a token with another secret matches")
	}
	if got.Matches(&Key{ID: tok.ID}) {
		t.Error("a key without a hash matches")
	}
	if !ValidID(tok.ID) || ValidID(tok.ID+"a") || ValidID(strings.ToUpper(tok.ID)) {
		t.Error("ValidID is wrong")
	}
	if pub := (&Key{ID: "x", SecretHash: []byte{1}}).Public(); pub.SecretHash != nil {
		t.Error("Public keeps the hash")
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	tok, _ := Generate()
	good := tok.String()
	sec := good[len(Prefix)+IDLen+1:]
	cases := map[string]string{
		"empty":              "",
		"other bearer":       "eyJhbGciOiJSUzI1NiJ9.e30.sig",
		"prefix only":        "grey_",
		"upper case":         strings.ToUpper(good),
		"one short":          good[:len(good)-1],
		"one long":           good + "a",
		"no separator":       Prefix + tok.ID + "a" + sec,
		"separator moved":    Prefix + tok.ID[:IDLen-1] + "_" + tok.ID[IDLen-1:] + sec,
		"bad alphabet id":    Prefix + "0" + tok.ID[1:] + "_" + sec,
		"bad alphabet sec":   Prefix + tok.ID + "_" + "1" + sec[1:],
		"non-canonical tail": Prefix + tok.ID + "_" + sec[:len(sec)-1] + "7",
		"padding":            Prefix + tok.ID + "_" + sec[:len(sec)-1] + "=",
	}
	for name, s := range cases {
		_, err := Parse(s)
		if err == nil {
			t.Errorf("%s: Parse(%q) succeeded", name, s)
			continue
		}
		if !greyerr.Is(err, greyerr.InvalidArgument) {
			t.Errorf("%s: code %s, want invalid_argument", name, greyerr.CodeOf(err))
		}
		if len(s) > 8 && strings.Contains(err.Error(), s[len(Prefix):]) {
			t.Errorf("%s: the error quotes the token: %v", name, err)
		}
	}
}

func TestParseTTL(t *testing.T) {
	t.Parallel()
	good := map[string]time.Duration{"90d": 90 * 24 * time.Hour, "12w": 84 * 24 * time.Hour, "36h": 36 * time.Hour, "1s": time.Second, " 7d ": 7 * 24 * time.Hour}
	for s, want := range good {
		if got, err := ParseTTL(s); err != nil || got != want {
			t.Errorf("ParseTTL(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "d", "0d", "-1d", "1.5d", "90x", "-3h", "0s", "99999999999d", "9999w", "100000h"} {
		if d, err := ParseTTL(s); err == nil {
			t.Errorf("ParseTTL(%q) = %v, want an error", s, d)
		}
	}
}

func TestMayCreate(t *testing.T) {
	t.Parallel()
	admin := &auth.Principal{Subject: "a", Grants: []auth.Grant{{Tenant: auth.AllTenants, Role: auth.RoleAdmin}}}
	opA := &auth.Principal{Subject: "o", Grants: []auth.Grant{{Tenant: "a", Role: auth.RoleOperator}, {Tenant: "b", Role: auth.RoleViewer}}}
	viewer := &auth.Principal{Subject: "v", Grants: []auth.Grant{{Tenant: "a", Role: auth.RoleViewer}}}
	workerP := &auth.Principal{Subject: "w", Grants: []auth.Grant{{Tenant: "a", Role: auth.RoleWorker}}}
	g := func(tenant string, role auth.Role, kinds ...string) auth.Grant {
		return auth.Grant{Tenant: tenant, Role: role, Kinds: kinds}
	}
	cases := []struct {
		name string
		p    *auth.Principal
		g    auth.Grant
		want greyerr.Code // "" = allowed
	}{
		{"admin creates an admin key", admin, g("*", auth.RoleAdmin), ""},
		{"admin creates any tenant's key", admin, g("b", auth.RoleOperator), ""},
		{"admin creates a worker key with kinds", admin, g("b", auth.RoleWorker, "resize"), ""},
		{"operator creates operator key of its tenant", opA, g("a", auth.RoleOperator), ""},
		{"operator creates viewer key of its tenant", opA, g("a", auth.RoleViewer), ""},
		{"operator creates worker key of its tenant", opA, g("a", auth.RoleWorker, "x"), ""},
		{"operator may not create admin keys", opA, g("*", auth.RoleAdmin), greyerr.PermissionDenied},
		{"operator may not create for another tenant", opA, g("c", auth.RoleViewer), greyerr.PermissionDenied},
		{"viewing is not operating", opA, g("b", auth.RoleViewer), greyerr.PermissionDenied},
		{"viewer creates nothing", viewer, g("a", auth.RoleViewer), greyerr.PermissionDenied},
		{"worker creates nothing", workerP, g("a", auth.RoleWorker), greyerr.PermissionDenied},
		{"nobody without a principal", nil, g("a", auth.RoleViewer), greyerr.Unauthenticated},
		{"admin key for one tenant", admin, g("a", auth.RoleAdmin), greyerr.InvalidArgument},
		{"tenant key for all tenants", admin, g("*", auth.RoleOperator), greyerr.InvalidArgument},
		{"unknown role", admin, g("a", "owner"), greyerr.InvalidArgument},
		{"bad tenant", admin, g("A B", auth.RoleViewer), greyerr.InvalidArgument},
		{"kinds on a viewer key", admin, g("a", auth.RoleViewer, "x"), greyerr.InvalidArgument},
		{"empty kind", admin, g("a", auth.RoleWorker, ""), greyerr.InvalidArgument},
	}
	for _, tc := range cases {
		err := MayCreate(tc.p, tc.g)
		if got := greyerr.CodeOf(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
			t.Errorf("%s: MayCreate = %v (code %q), want code %q", tc.name, err, got, tc.want)
		}
	}
	if !Manages(opA, "a") || Manages(opA, "b") || Manages(viewer, "a") || !Manages(admin, "zzz") || Manages(nil, "a") || Manages(opA, "*") {
		t.Error("Manages is wrong")
	}
}

func TestKeyState(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := &Key{ExpiresAt: now}
	if !k.Expired(now) || k.Expired(now.Add(-time.Nanosecond)) {
		t.Error("Expired is wrong at the boundary")
	}
	if (&Key{}).Expired(now) {
		t.Error("a key without expiry expired")
	}
	if (&Key{}).Revoked() || !(&Key{RevokedAt: now}).Revoked() {
		t.Error("Revoked is wrong")
	}
}

// FuzzParse: Parse never panics, refuses what Generate would not produce,
// and what it accepts prints back as the same string.
func FuzzParse(f *testing.F) {
	tok, _ := Generate()
	f.Add(tok.String())
	f.Add("grey_")
	f.Add("grey_aaaaaaaaaaaaaaaa_")
	f.Add("Bearer grey_x_y")
	f.Add(strings.Repeat("grey_", 20))
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s)
		if err != nil {
			if !greyerr.Is(err, greyerr.InvalidArgument) {
				t.Fatalf("Parse(%q): code %s", s, greyerr.CodeOf(err))
			}
			return
		}
		if got.String() != s {
			t.Fatalf("Parse(%q) prints back as %q", s, got.String())
		}
		if len(got.Secret) != 32 || !ValidID(got.ID) {
			t.Fatalf("Parse(%q) = %+v", s, got)
		}
	})
}

// FuzzParseTTL: lifetimes are positive and at most ten years, or refused
// with an InvalidArgument error.
func FuzzParseTTL(f *testing.F) {
	for _, s := range []string{"90d", "12w", "36h", "0d", "-1h", "99999999999999999999d", "1.5h", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseTTL(s)
		if err != nil {
			if !greyerr.Is(err, greyerr.InvalidArgument) {
				t.Fatalf("ParseTTL(%q): code %s", s, greyerr.CodeOf(err))
			}
			return
		}
		if d <= 0 || d > maxTTLDays*24*time.Hour {
			t.Fatalf("ParseTTL(%q) = %v", s, d)
		}
	})
}
