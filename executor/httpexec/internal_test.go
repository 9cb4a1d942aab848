package httpexec

import (
	"net/netip"
	"testing"
)

func TestNonPublic(t *testing.T) {
	t.Parallel()
	for ip, blocked := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true,
		"10.1.2.3": true, "172.16.0.1": true, "172.31.255.255": true, "192.168.1.1": true,
		"169.254.169.254": true, "fe80::1": true, "fd00::1": true,
		"0.0.0.0": true, "::": true, "100.64.0.1": true, "224.0.0.1": true, "255.255.255.255": true,
		"::ffff:127.0.0.1": true, "::ffff:10.0.0.1": true, "64:ff9b::a00:1": true, "2002:a00:1::": true,
		"8.8.8.8": false, "1.1.1.1": false, "172.32.0.1": false, "2606:4700:4700::1111": false,
		"::ffff:8.8.8.8": false, "64:ff9b::808:808": false,
	} {
		if got := nonPublic(netip.MustParseAddr(ip)) != ""; got != blocked {
			t.Errorf("%s: blocked = %v, want %v", ip, got, blocked)
		}
	}
}

func TestHostPatterns(t *testing.T) {
	t.Parallel()
	e, err := New(Config{AllowHosts: []string{"API.example.com", "*.hooks.example.com", "pinned.example.com:8443", "[::1]:9000", "10.0.0.5"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, port string
		ok         bool
	}{
		{"api.example.com", "443", true}, {"API.EXAMPLE.COM.", "80", true},
		{"example.com", "443", false}, {"evil-api.example.com", "443", false},
		{"a.hooks.example.com", "443", true}, {"a.b.hooks.example.com", "80", true}, {"hooks.example.com", "443", false},
		{"pinned.example.com", "8443", true}, {"pinned.example.com", "443", false},
		{"::1", "9000", true}, {"::1", "9001", false}, {"10.0.0.5", "80", true},
	} {
		if got := e.allowed("t", tc.host, tc.port); got != tc.ok {
			t.Errorf("%s:%s allowed = %v, want %v", tc.host, tc.port, got, tc.ok)
		}
	}
	for _, bad := range []string{"", "https://x.com", "x.com/path", "a.*.com", "*", "x.com:99999"} {
		if _, err := New(Config{AllowHosts: []string{bad}}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
