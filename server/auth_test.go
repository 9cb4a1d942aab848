package server_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/grey-distributed/grey/config"
	"github.com/grey-distributed/grey/internal/greytest"
	"github.com/grey-distributed/grey/server"
)

// TestNewRefusesModeNoneBeyondLoopback: the refusal is the server's, not
// only the command line's.
func TestNewRefusesModeNoneBeyondLoopback(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	cfg.HTTP.Addr, cfg.HTTP.Advertise = "0.0.0.0:0", "http://10.0.0.1:8080"
	_, err := server.New(cfg, greytest.Logger(t))
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != "auth.mode" || !strings.Contains(err.Error(), "0.0.0.0:0") {
		t.Fatalf("server.New: %v, want an auth.mode error", err)
	}
}

// TestNewNeedsAnAuthenticatorPerMode: a mode without its authenticator is
// a start-up error naming auth.mode, not a silently open API.
func TestNewNeedsAnAuthenticatorPerMode(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	cfg.Auth.Mode = config.AuthModes{config.AuthOIDC}
	_, err := server.New(cfg, greytest.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "auth.mode") || !strings.Contains(err.Error(), "oidc") {
		t.Fatalf("server.New: %v", err)
	}
}
