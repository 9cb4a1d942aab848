package e2e

// TestAuthKeycloak: the identity design's acceptance check with the real
// binaries and the real Keycloak of scripts/services.sh (realm grey,
// scripts/keycloak/grey-realm.json). greyd runs with the documented example
// config, examples/auth/keycloak.yaml (OIDC, API keys, SAML), and is driven
// with greyctl and the Go client using tokens Keycloak issues:
//
//   - alice (acme operator) submits to acme and reads her tasks, gets 404 for
//     a globex task and 403 tenant_not_allowed when she asks for globex;
//   - bob (acme viewer) cannot submit (403 role_not_allowed) but can read;
//   - dave is acme's operator through his group (a binding rule);
//   - a worker API key the admin made for acme with kinds [noop] leases only
//     acme's noop tasks, whatever kinds it asks for; grey-worker's client
//     credentials token leases acme's tasks only, by hand and as a
//     worker-only greyd (node.credentials.oauth2);
//   - no credential: 401 with WWW-Authenticate; a garbage, tampered or
//     expired token (from a client with 2 s tokens, made and removed through
//     Keycloak's admin API) and a revoked key: 401;
//   - the audit file has a line for a submit and for a denial, with the
//     principal and no secret;
//   - greyctl login (password grant, --password-stdin) stores a token that
//     the next greyctl command uses.
//
// It fails, in CI, when Keycloak is not running (internal/testenv).
//
//	GREY_E2E=1 go test -count=1 -run TestAuthKeycloak -v ./e2e/

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/grey-distributed/grey/client"
	"github.com/grey-distributed/grey/internal/testenv"
	"github.com/grey-distributed/grey/task"
	"github.com/grey-distributed/grey/worker"
)

// keycloakExampleDefaultURL is the Keycloak URL examples/auth/keycloak.yaml
// is written for; the test points it at GREY_TEST_KEYCLOAK_URL.
const keycloakExampleDefaultURL = "http://127.0.0.1:18180"

// keycloakToken gets an access token from Keycloak's token endpoint of
// issuer with form (a password or client-credentials grant).
func keycloakToken(t *testing.T, issuer string, form url.Values) string {
	t.Helper()
	resp, err := http.PostForm(issuer+"/protocol/openid-connect/token", form)
	if err != nil {
		t.Fatalf("keycloak token: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("keycloak token for %s: HTTP %d %v %s %s", form.Get("username")+form.Get("client_id"), resp.StatusCode, err, out.Error, out.Description)
	}
	return out.AccessToken
}

// userToken is a password-grant access token of user from client greyctl.
func userToken(t *testing.T, issuer, user, password string) string {
	t.Helper()
	return keycloakToken(t, issuer, url.Values{"grant_type": {"password"}, "client_id": {"greyctl"},
		"username": {user}, "password": {password}})
}

// tokenSubject is the sub claim of a JWT (unverified: the test only names it).
func tokenSubject(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Sub
}

// keycloakExampleConfig is examples/auth/keycloak.yaml pointed at the test's
// Keycloak, with the audit log in auditPath, and extra prepended (top-level
// blocks the example does not have).
func keycloakExampleConfig(t *testing.T, kcURL, auditPath, extra string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", "auth", "keycloak.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, want := range []string{"\nauth:\n", "mode: [oidc, apikey, saml]", keycloakExampleDefaultURL + "/realms/grey"} {
		if !strings.Contains(cfg, want) {
			t.Fatalf("examples/auth/keycloak.yaml no longer contains %q: update this test with the example", want)
		}
	}
	cfg = strings.ReplaceAll(cfg, keycloakExampleDefaultURL, strings.TrimRight(kcURL, "/"))
	cfg = strings.Replace(cfg, "\nauth:\n", "\nauth:\n  audit:\n    sink: "+auditPath+"\n", 1)
	return extra + cfg
}

// greyctlEnv runs greyctl with extra environment variables and stdin.
func greyctlEnv(t *testing.T, env []string, stdin string, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, greyctlBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := ctlResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("greyctl %s: %v", strings.Join(args, " "), err)
		}
		res.Code = ee.ExitCode()
	}
	return res
}

// shortLivedToken makes a confidential client in the realm of issuer whose
// access tokens live 2 seconds (through the master realm's bootstrap admin
// of scripts/services.sh; the client is deleted when the test ends) and
// returns a client-credentials token of it, with the time it expires.
func shortLivedToken(t *testing.T, kcURL, issuer string) (string, time.Time) {
	t.Helper()
	kc := strings.TrimRight(kcURL, "/")
	admin := keycloakToken(t, kc+"/realms/master", url.Values{"grant_type": {"password"}, "client_id": {"admin-cli"},
		"username": {"admin"}, "password": {"admin"}})
	adminCall := func(method, path string, body any) *http.Response {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, kc+"/admin/realms/"+testenv.KeycloakRealm+path, rd)
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("keycloak admin %s %s: %v", method, path, err)
		}
		return resp
	}
	name := fmt.Sprintf("grey-e2e-short-%d", time.Now().UnixNano())
	resp := adminCall(http.MethodPost, "/clients", map[string]any{
		"clientId": name, "enabled": true, "publicClient": false, "secret": "short-lived-secret",
		"serviceAccountsEnabled": true, "standardFlowEnabled": false,
		"attributes": map[string]string{"access.token.lifespan": "2"},
		"protocolMappers": []any{map[string]any{"name": "audience grey", "protocol": "openid-connect",
			"protocolMapper": "oidc-audience-mapper",
			"config":         map[string]string{"included.custom.audience": "grey", "access.token.claim": "true"}}},
	})
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create the short-lived client: HTTP %d", resp.StatusCode)
	}
	t.Cleanup(func() {
		r := adminCall(http.MethodGet, "/clients?clientId="+name, nil)
		var cs []struct{ ID string }
		_ = json.NewDecoder(r.Body).Decode(&cs)
		r.Body.Close()
		for _, c := range cs {
			adminCall(http.MethodDelete, "/clients/"+c.ID, nil).Body.Close()
		}
	})
	tok := keycloakToken(t, issuer, url.Values{"grant_type": {"client_credentials"}, "client_id": {name},
		"client_secret": {"short-lived-secret"}})
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Exp int64 `json:"exp"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Exp == 0 {
		t.Fatalf("short-lived token without exp: %v", err)
	}
	return tok, time.Unix(c.Exp, 0)
}

func TestAuthKeycloak(t *testing.T) {
	requireE2E(t)
	kcURL := testenv.ServiceURL(t, "keycloak")
	issuer := testenv.KeycloakIssuer(t)
	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.log")
	// No in-process workers: the test leases by hand, as worker principals.
	g := newGreyd(t, keycloakExampleConfig(t, kcURL, auditPath, "worker:\n  enabled: false\n"))
	g.Start()
	g.WaitReady(60 * time.Second)
	srv := g.URL()

	alice := userToken(t, issuer, "alice", "alice-password")
	bob := userToken(t, issuer, "bob", "bob-password")
	carol := userToken(t, issuer, "carol", "carol-password")
	dave := userToken(t, issuer, "dave", "dave-password")
	admin := userToken(t, issuer, "grey-admin", "admin-password")
	workerTok := keycloakToken(t, issuer, url.Values{"grant_type": {"client_credentials"},
		"client_id": {"grey-worker"}, "client_secret": {"grey-worker-secret"}})
	secrets := []string{alice, bob, carol, dave, admin, workerTok, "alice-password", "admin-password", "grey-worker-secret"}

	ctl := func(token string, args ...string) ctlResult {
		t.Helper()
		return greyctl(t, srv, time.Minute, append([]string{"--token", token, "-o", "json"}, args...)...)
	}
	mustCtl := func(token string, args ...string) string {
		t.Helper()
		r := ctl(token, args...)
		if r.Code != 0 {
			t.Fatalf("greyctl %s: exit %d\n%s%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
		}
		return r.Stdout
	}
	submit := func(token, tenant, kind string) task.ID {
		t.Helper()
		var tk task.Task
		out := mustCtl(token, "--tenant", tenant, "task", "submit", "--kind", kind, "--payload", `"x"`)
		if err := json.Unmarshal([]byte(out), &tk); err != nil || tk.ID == "" || tk.TenantID != tenant {
			t.Fatalf("submit %s to %s: %v %s", kind, tenant, err, out)
		}
		return tk.ID
	}
	refused := func(r ctlResult, what string, wants ...string) {
		t.Helper()
		if r.Code == 0 {
			t.Errorf("%s: greyctl exited 0, want a refusal\n%s", what, r.Stdout)
			return
		}
		for _, w := range wants {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("%s: stderr %q does not contain %q", what, r.Stderr, w)
			}
		}
	}

	// The admin (grey-admin's "*:admin") creates the tenants.
	for _, tn := range []string{"acme", "globex"} {
		mustCtl(admin, "tenant", "create", tn)
	}

	// alice: operator of acme.
	aliceTask := submit(alice, "acme", "noop")
	var listed []task.ID // greyctl -o json lists one task per line
	for _, line := range strings.Split(strings.TrimSpace(mustCtl(alice, "--tenant", "acme", "task", "list")), "\n") {
		var tk task.Task
		if err := json.Unmarshal([]byte(line), &tk); err != nil {
			t.Fatalf("task list line %q: %v", line, err)
		}
		listed = append(listed, tk.ID)
	}
	if !slices.Contains(listed, aliceTask) {
		t.Errorf("alice's list of acme lacks her task %s: %v", aliceTask, listed)
	}
	// Without --tenant greyctl sends no X-Grey-Tenant: alice's only tenant.
	var implicit task.Task
	if err := json.Unmarshal([]byte(mustCtl(alice, "task", "submit", "--kind", "noop")), &implicit); err != nil || implicit.TenantID != "acme" {
		t.Errorf("alice's submit without --tenant: %v, tenant %q, want acme", err, implicit.TenantID)
	}
	globexTask := submit(carol, "globex", "noop")
	refused(ctl(alice, "--tenant", "acme", "task", "get", string(globexTask)), "alice reads a globex task", "not found")
	refused(ctl(alice, "--tenant", "globex", "task", "get", string(globexTask)), "alice acts for globex", "tenant_not_allowed")
	refused(ctl(alice, "--tenant", "globex", "task", "submit", "--kind", "noop"), "alice submits to globex", "tenant_not_allowed")

	// bob: viewer of acme.
	refused(ctl(bob, "--tenant", "acme", "task", "submit", "--kind", "noop"), "bob submits", "role_not_allowed")
	if out := mustCtl(bob, "--tenant", "acme", "task", "get", string(aliceTask)); !strings.Contains(out, string(aliceTask)) {
		t.Errorf("bob reads alice's task: %s", out)
	}
	// dave: operator of acme through the group binding of the example.
	submit(dave, "acme", "noop")

	// A worker key for acme limited to noop, created by the admin.
	var created client.CreatedAPIKey
	if err := json.Unmarshal([]byte(mustCtl(admin, "apikey", "create", "--tenant", "acme", "--role", "worker",
		"--kinds", "noop", "--expires", "1h", "--name", "e2e-noop")), &created); err != nil || !strings.HasPrefix(created.Token, "grey_") {
		t.Fatalf("apikey create: %v %+v", err, created.Key)
	}
	secrets = append(secrets, created.Token)
	echoTask := submit(alice, "acme", "echo")
	globexNoop := submit(carol, "globex", "noop")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keyClient, err := client.New(srv, client.WithAPIKey(created.Token))
	if err != nil {
		t.Fatal(err)
	}
	leaseAll := func(c *client.Client, workerID string) []worker.Assignment {
		t.Helper()
		var got []worker.Assignment
		for {
			resp, err := c.Lease(ctx, &worker.LeaseRequest{WorkerID: workerID, Kinds: []string{"noop", "echo"}, Max: 100})
			if err != nil {
				t.Fatalf("%s lease: %v", workerID, err)
			}
			if len(resp.Tasks) == 0 {
				return got
			}
			got = append(got, resp.Tasks...)
		}
	}
	leased := leaseAll(keyClient, "e2e-key-worker")
	if len(leased) != 3 { // alice's two and dave's noop tasks of acme
		t.Errorf("the noop worker key leased %d tasks, want acme's 3 noop tasks: %+v", len(leased), leased)
	}
	for _, a := range leased {
		if a.TenantID != "acme" || a.Kind != "noop" {
			t.Errorf("the acme/noop worker key was handed %s task %s of kind %s", a.TenantID, a.TaskID, a.Kind)
		}
		r, err := keyClient.Complete(ctx, &worker.CompleteRequest{WorkerID: "e2e-key-worker", Reports: []worker.Report{{
			TaskID: a.TaskID, Attempt: a.Attempt, Status: task.Completed, Result: json.RawMessage(`"done"`), At: time.Now()}}})
		if err != nil || len(r.Results) != 1 || !r.Results[0].Accepted {
			t.Errorf("report %s: %+v %v", a.TaskID, r, err)
		}
	}
	// grey-worker (client credentials, worker on acme, any kind): acme's
	// echo task, never globex's.
	ccClient, err := client.New(srv, client.WithClientCredentials(ctx, &clientcredentials.Config{
		ClientID: "grey-worker", ClientSecret: "grey-worker-secret", TokenURL: issuer + "/protocol/openid-connect/token",
	}))
	if err != nil {
		t.Fatal(err)
	}
	ccLeased := leaseAll(ccClient, "e2e-cc-worker")
	if len(ccLeased) != 1 || ccLeased[0].TaskID != echoTask {
		t.Errorf("grey-worker leased %+v, want only acme's echo task %s", ccLeased, echoTask)
	}
	for _, id := range []task.ID{globexTask, globexNoop} {
		var tk task.Task
		if err := json.Unmarshal([]byte(mustCtl(carol, "--tenant", "globex", "task", "get", string(id))), &tk); err != nil || tk.Status != task.Pending {
			t.Errorf("globex task %s: %v, status %s: want pending (no acme worker may lease it)", id, err, tk.Status)
		}
	}
	var done task.Task
	if err := json.Unmarshal([]byte(mustCtl(alice, "--tenant", "acme", "task", "get", string(aliceTask))), &done); err != nil ||
		done.Status != task.Completed || len(done.Attempts) == 0 || done.Attempts[len(done.Attempts)-1].Principal != "apikey:"+created.Key.ID {
		t.Errorf("alice's task after the key's report: %v %+v", err, done)
	}

	// Raw HTTP: the challenges.
	hc := &http.Client{Timeout: 10 * time.Second}
	call := func(token, tenant string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv+"/api/v1/tasks", strings.NewReader(`{"kind":"noop"}`))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if tenant != "" {
			req.Header.Set("X-Grey-Tenant", tenant)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := call("", "acme"); resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="grey"`) {
		t.Errorf("no token: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
	// A token that expires in 2 s: accepted now (403: authenticated, no
	// grants), refused once past exp and the default 30 s leeway, even
	// though its verification is cached.
	short, shortExp := shortLivedToken(t, kcURL, issuer)
	if resp, body := call(short, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("fresh short-lived token: %d %s, want 403 (no grants)", resp.StatusCode, body)
	}
	secrets = append(secrets, short)
	parts := strings.Split(alice, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte("acme:operator"), []byte("globex:operator"), 1)) + "." + parts[2]
	for name, tok := range map[string]string{"garbage": "garbage.garbage.garbage", "tampered": tampered} {
		resp, body := call(tok, "globex")
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s token: %d %q %s", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
	mustCtl(admin, "apikey", "revoke", created.Key.ID)
	if _, err := keyClient.Lease(ctx, &worker.LeaseRequest{WorkerID: "e2e-key-worker", Kinds: []string{"noop"}, Max: 1}); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("lease with the revoked key: %v, want 401 revoked", err)
	}

	// A worker-only greyd authenticating with grey-worker's OAuth2 client
	// credentials (node.credentials.oauth2): it runs acme's tasks, and
	// globex's stay pending.
	wcfg := filepath.Join(dir, "worker.yaml")
	if err := os.WriteFile(wcfg, []byte(fmt.Sprintf(`node:
  role: worker
  servers: [%s]
  credentials:
    oauth2:
      client_id: grey-worker
      client_secret: grey-worker-secret
      token_url: %s/protocol/openid-connect/token
`, g.HTTPAddr, issuer)), 0o600); err != nil {
		t.Fatal(err)
	}
	wn := newNodeProc(t, dir, "oauth2-worker", "", "--config", wcfg, "--node-id", "kc-w1", "--data-dir", filepath.Join(dir, "kc-w1"),
		"--metrics-addr", fmt.Sprintf("127.0.0.1:%d", freePortOn(t, "127.0.0.1")))
	wn.Start()
	aliceClient, err := client.New(srv, client.WithToken(alice))
	if err != nil {
		t.Fatal(err)
	}
	nodeTask, err := aliceClient.Submit(ctx, task.Spec{Kind: "echo", Payload: json.RawMessage(`"via oauth2"`)})
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, 60*time.Second)
	ran, err := aliceClient.Wait(waitCtx, nodeTask.ID)
	waitCancel()
	workerSubject := "oidc:" + issuer + "#" + tokenSubject(t, workerTok)
	if err != nil || ran.Status != task.Completed || ran.Attempts[len(ran.Attempts)-1].WorkerID != "kc-w1" ||
		ran.Attempts[len(ran.Attempts)-1].Principal != workerSubject {
		t.Errorf("acme task for the oauth2 worker node: %v %+v\nworker log:\n%s", err, ran, tail([]byte(wn.Stderr()), 3000))
	}
	for _, id := range []task.ID{globexTask, globexNoop} {
		var tk task.Task
		if err := json.Unmarshal([]byte(mustCtl(carol, "--tenant", "globex", "task", "get", string(id))), &tk); err != nil || tk.Status != task.Pending {
			t.Errorf("globex task %s with the acme worker node running: %v, status %s", id, err, tk.Status)
		}
	}

	// greyctl login: the password grant against Keycloak, stored in a 0600
	// file, used by the next command.
	cfgDir := filepath.Join(dir, "greyctl-config")
	env := []string{"GREY_CONFIG_DIR=" + cfgDir}
	if r := greyctlEnv(t, env, "alice-password\n", "login", "--issuer", issuer, "--username", "alice", "--password-stdin"); r.Code != 0 {
		t.Fatalf("greyctl login: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if st, err := os.Stat(filepath.Join(cfgDir, "token.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("token.json: %v %v, want mode 0600", st, err)
	}
	if r := greyctlEnv(t, env, "", "--server", srv, "--tenant", "acme", "-o", "json", "task", "get", string(aliceTask)); r.Code != 0 || !strings.Contains(r.Stdout, string(aliceTask)) {
		t.Errorf("greyctl with the stored login: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := greyctlEnv(t, env, "", "--server", srv, "--tenant", "globex", "task", "list"); r.Code == 0 || !strings.Contains(r.Stderr, "tenant_not_allowed") {
		t.Errorf("greyctl with alice's stored login for globex: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// The short-lived token, expired.
	time.Sleep(time.Until(shortExp.Add(31 * time.Second)))
	if resp, body := call(short, ""); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "expired") ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("expired token: %d %q %s, want 401 token expired", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}

	// The audit log: a submit and a denial, with principals, no secrets.
	b, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	aliceSubject := "oidc:" + issuer + "#" + tokenSubject(t, alice)
	var sawSubmit, sawDenial, sawUnauth bool
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev struct {
			Principal, Tenant, Action, Outcome, Reason string
			Status                                     int
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		switch {
		case ev.Principal == aliceSubject && ev.Action == "task.submit" && ev.Tenant == "acme" && ev.Outcome == "allowed":
			sawSubmit = true
		case ev.Principal == aliceSubject && ev.Outcome == "denied" && ev.Status == 403 && ev.Reason == "tenant_not_allowed":
			sawDenial = true
		case ev.Principal == "" && ev.Outcome == "denied" && ev.Status == 401:
			sawUnauth = true
		}
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("audit line holds a secret: %s", line)
			}
		}
	}
	if !sawSubmit || !sawDenial || !sawUnauth {
		t.Errorf("audit log: submit=%v denial=%v unauthenticated=%v, want all\n%s", sawSubmit, sawDenial, sawUnauth, b)
	}
	if strings.Contains(string(b), created.Token[len("grey_")+16:]) {
		t.Errorf("the audit log holds the API key's secret")
	}
}
