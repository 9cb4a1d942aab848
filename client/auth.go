package client

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/grey-distributed/grey/auth/apikey"
	"github.com/grey-distributed/grey/greyerr"
)

// A client authenticates in one of these ways, chosen by option (the last
// one given wins):
//
//   - WithToken: a static bearer token (an OIDC access token, the admin
//     token);
//   - WithAPIKey: a Grey API key, grey_<id>_<secret>;
//   - WithClientCredentials: the OAuth2 client-credentials grant against the
//     identity provider's token endpoint, the token fetched on first use and
//     again shortly before it expires;
//   - WithTokenSource: any oauth2.TokenSource (a stored login, a token file
//     that another process rotates: see FileTokenSource).
//
// Workers built with NewWorker use the client's credential.

// WithAPIKey authenticates with a Grey API key. New refuses a malformed
// key (without quoting it).
func WithAPIKey(key string) Option {
	return func(c *Client) { c.token, c.apiKey, c.tokens = key, true, nil }
}

// WithTokenSource authenticates with the tokens of ts, asked before every
// request (wrap it in oauth2.ReuseTokenSource to cache them).
func WithTokenSource(ts oauth2.TokenSource) Option {
	return func(c *Client) { c.token, c.apiKey, c.tokens = "", false, ts }
}

// WithClientCredentials authenticates with OAuth2 client credentials: cfg's
// token endpoint is asked for a token, which is reused until shortly before
// it expires and then fetched again. ctx carries the HTTP client for the
// token endpoint (oauth2.HTTPClient) and must outlive the Client.
func WithClientCredentials(ctx context.Context, cfg *clientcredentials.Config) Option {
	return WithTokenSource(cfg.TokenSource(ctx))
}

// setAuth sets the request's Authorization header from the credential.
func (c *Client) setAuth(req *http.Request) error {
	if c.tokens != nil {
		tok, err := c.tokens.Token()
		if err != nil {
			return greyerr.Wrap(greyerr.Unauthenticated, err, "get a token for %s %s", req.Method, req.URL.Path)
		}
		if tok.AccessToken == "" {
			return greyerr.New(greyerr.Unauthenticated, "the token source returned an empty access token")
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		return nil
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return nil
}

// checkAuth validates the credential options in New.
func (c *Client) checkAuth() error {
	if c.apiKey {
		if _, err := apikey.Parse(c.token); err != nil {
			return greyerr.Wrap(greyerr.InvalidArgument, err, "WithAPIKey")
		}
	}
	if strings.ContainsAny(c.token, "\r\n") {
		return greyerr.Invalid("token", "a token must be one line")
	}
	return nil
}

// FileTokenSource returns a token source that reads a bearer token from
// path (surrounding white space trimmed) and reads it again whenever the
// file changes, for tokens that another process rotates (a Kubernetes
// projected service-account token, a sidecar's output).
func FileTokenSource(path string) oauth2.TokenSource {
	return &fileTokenSource{path: path}
}

type fileTokenSource struct {
	path string

	mu    sync.Mutex
	mtime time.Time
	size  int64
	tok   string
}

// Token implements oauth2.TokenSource.
func (f *fileTokenSource) Token() (*oauth2.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, greyerr.Wrap(greyerr.Unauthenticated, err, "token file")
	}
	if f.tok == "" || !fi.ModTime().Equal(f.mtime) || fi.Size() != f.size {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return nil, greyerr.Wrap(greyerr.Unauthenticated, err, "token file")
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" || strings.ContainsAny(tok, "\r\n") {
			return nil, greyerr.New(greyerr.Unauthenticated, "token file %s must hold one non-empty line", f.path)
		}
		f.tok, f.mtime, f.size = tok, fi.ModTime(), fi.Size()
	}
	return &oauth2.Token{AccessToken: f.tok, TokenType: "Bearer"}, nil
}
