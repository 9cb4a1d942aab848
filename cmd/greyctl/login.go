package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
	"golang.org/x/term"
)

// The stored login: greyctl login writes the user's OAuth2 token (with its
// refresh token) to a 0600 file under the user's config directory; every
// later command without --token or --api-key sends it, refreshing it when
// it has expired and writing the new one back.

// loginFileName is the stored login's file name in the config directory.
const loginFileName = "token.json"

// storedLogin is the content of the login file.
type storedLogin struct {
	Issuer       string        `json:"issuer"`
	ClientID     string        `json:"client_id"`
	ClientSecret string        `json:"client_secret,omitempty"`
	TokenURL     string        `json:"token_url"`
	Scopes       []string      `json:"scopes,omitempty"`
	Token        *oauth2.Token `json:"token"`
}

func (l *storedLogin) oauth2Config() *oauth2.Config {
	return &oauth2.Config{ClientID: l.ClientID, ClientSecret: l.ClientSecret, Endpoint: endpoint(oauth2.Endpoint{TokenURL: l.TokenURL}, l.ClientSecret), Scopes: l.Scopes}
}

// endpoint sets how the client authenticates at e: a public client (no
// secret) sends its id in the form, rather than have oauth2 try HTTP Basic
// first and send each password twice.
func endpoint(e oauth2.Endpoint, secret string) oauth2.Endpoint {
	if secret == "" {
		e.AuthStyle = oauth2.AuthStyleInParams
	}
	return e
}

// loginPath is $GREY_CONFIG_DIR/token.json, by default under
// os.UserConfigDir()/grey.
func (a *app) loginPath() (string, error) {
	dir := a.getenv("GREY_CONFIG_DIR")
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find the config directory (set GREY_CONFIG_DIR): %w", err)
		}
		dir = filepath.Join(base, "grey")
	}
	return filepath.Join(dir, loginFileName), nil
}

// loadLogin reads the stored login; nil without one.
func loadLogin(path string) (*storedLogin, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the stored login: %w", err)
	}
	var l storedLogin
	if err := json.Unmarshal(b, &l); err != nil || l.Token == nil || l.TokenURL == "" {
		return nil, fmt.Errorf("the stored login %s is damaged; run greyctl login again (or greyctl logout)", path)
	}
	return &l, nil
}

// saveLogin writes l to path, readable by the user only, atomically.
func saveLogin(path string, l *storedLogin) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store the login: %w", err)
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("store the login: %w", err)
	}
	f, err := os.CreateTemp(dir, ".token-*.json") // mode 0600
	if err != nil {
		return fmt.Errorf("store the login: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful rename, nothing is left to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("store the login: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("store the login: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store the login: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("store the login: %w", err)
	}
	return nil
}

// loginTokenSource serves the stored token, refreshing it through the
// issuer's token endpoint when it has expired and storing the new one.
type loginTokenSource struct {
	path string
	l    *storedLogin
	ts   oauth2.TokenSource

	mu   sync.Mutex
	last string
}

func newLoginTokenSource(ctx context.Context, path string, l *storedLogin) *loginTokenSource {
	return &loginTokenSource{path: path, l: l, ts: l.oauth2Config().TokenSource(ctx, l.Token), last: l.Token.AccessToken}
}

// Token implements oauth2.TokenSource.
func (s *loginTokenSource) Token() (*oauth2.Token, error) {
	tok, err := s.ts.Token()
	if err != nil {
		return nil, fmt.Errorf("the stored login has expired and could not be refreshed; run greyctl login again: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok.AccessToken != s.last {
		s.last = tok.AccessToken
		l := *s.l
		l.Token = tok
		if err := saveLogin(s.path, &l); err != nil {
			return nil, err
		}
	}
	return tok, nil
}

func newLoginCmd(a *app) *cobra.Command {
	var (
		issuer, clientID, clientSecret, username string
		scopes                                   []string
		passwordStdin, device                    bool
	)
	cmd := &cobra.Command{
		Use:   "login [--issuer URL] [--client-id ID] [--username U] [--password-stdin | --device]",
		Short: "Sign in at the OIDC issuer and store the token for later commands",
		Long: `Sign in at the OIDC issuer (--issuer or GREY_OIDC_ISSUER) as OAuth2 client
--client-id (GREY_OIDC_CLIENT_ID, default greyctl), with the resource-owner
password grant (--username, the password typed without echo or read from
stdin with --password-stdin) or the device flow (--device: open the printed
URL, enter the code). The token and its refresh token are stored, readable
by you only, in token.json under GREY_CONFIG_DIR (default: the "grey"
folder of your config directory). Commands without --token or --api-key
then use it, refreshing it when it expires. greyctl logout removes it.`,
		Example: `  greyctl login --issuer https://sso.example.com/realms/grey --username alice
  echo "$PASSWORD" | greyctl login --issuer https://sso.example.com/realms/grey --username ci --password-stdin
  greyctl login --issuer https://sso.example.com/realms/grey --device`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if !cmd.Flags().Changed("issuer") {
				issuer = a.getenv("GREY_OIDC_ISSUER")
			}
			if !cmd.Flags().Changed("client-id") {
				if v := a.getenv("GREY_OIDC_CLIENT_ID"); v != "" {
					clientID = v
				}
			}
			if !cmd.Flags().Changed("client-secret") {
				clientSecret = a.getenv("GREY_OIDC_CLIENT_SECRET")
			}
			if issuer == "" {
				return usageErrorf("login: give --issuer or set GREY_OIDC_ISSUER")
			}
			if device && (passwordStdin || username != "") {
				return usageErrorf("login: --device does not take --username or --password-stdin")
			}
			path, err := a.loginPath()
			if err != nil {
				return failure(err)
			}
			if a.httpClient != nil {
				ctx = oidc.ClientContext(ctx, a.httpClient)
			}
			p, err := oidc.NewProvider(ctx, issuer)
			if err != nil {
				return failure(fmt.Errorf("discover the issuer %s: %w", issuer, err))
			}
			conf := &oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, Endpoint: endpoint(p.Endpoint(), clientSecret), Scopes: scopes}
			var tok *oauth2.Token
			if device {
				tok, err = a.deviceLogin(ctx, conf)
			} else {
				tok, err = a.passwordLogin(ctx, conf, username, passwordStdin)
			}
			if err != nil {
				return err
			}
			l := &storedLogin{Issuer: issuer, ClientID: clientID, ClientSecret: clientSecret, TokenURL: conf.Endpoint.TokenURL, Scopes: scopes, Token: tok}
			if err := saveLogin(path, l); err != nil {
				return failure(err)
			}
			exp := "no expiry"
			if !tok.Expiry.IsZero() {
				exp = "expires " + formatTime(tok.Expiry)
			}
			refresh := "no refresh token"
			if tok.RefreshToken != "" {
				refresh = "refreshed automatically"
			}
			_, err = fmt.Fprintf(a.stdout, "logged in at %s; token stored in %s (%s, %s)\n", issuer, path, exp, refresh)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&issuer, "issuer", "", "OIDC issuer URL (env GREY_OIDC_ISSUER)")
	f.StringVar(&clientID, "client-id", "greyctl", "OAuth2 client id (env GREY_OIDC_CLIENT_ID)")
	f.StringVar(&clientSecret, "client-secret", "", "OAuth2 client secret, for a confidential client (env GREY_OIDC_CLIENT_SECRET)")
	f.StringVar(&username, "username", "", "user name (password grant; asked for when missing)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	f.BoolVar(&device, "device", false, "use the device flow instead of a password")
	f.StringSliceVar(&scopes, "scope", []string{"openid"}, "OAuth2 scopes, comma-separated")
	return cmd
}

// passwordLogin runs the resource-owner password grant.
func (a *app) passwordLogin(ctx context.Context, conf *oauth2.Config, username string, passwordStdin bool) (*oauth2.Token, error) {
	in := bufio.NewReader(a.stdin)
	tty := a.terminal()
	if username == "" {
		if !tty {
			return nil, usageErrorf("login: give --username (or use --device)")
		}
		fmt.Fprint(a.stderr, "Username: ")
		line, err := readLine(in)
		if err != nil {
			return nil, failure(fmt.Errorf("read the user name: %w", err))
		}
		username = line
	}
	var password string
	switch {
	case passwordStdin || !tty:
		line, err := readLine(in)
		if err != nil {
			return nil, failure(fmt.Errorf("read the password from stdin: %w", err))
		}
		password = line
	default:
		fmt.Fprint(a.stderr, "Password: ")
		f := a.stdin.(*os.File)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return nil, failure(fmt.Errorf("read the password: %w", err))
		}
		password = string(b)
	}
	if username == "" || password == "" {
		return nil, usageErrorf("login: the user name and the password must not be empty")
	}
	tok, err := conf.PasswordCredentialsToken(ctx, username, password)
	if err != nil {
		return nil, failure(fmt.Errorf("sign in as %s: %w", username, loginError(err)))
	}
	return tok, nil
}

// deviceLogin runs the device authorization grant (RFC 8628).
func (a *app) deviceLogin(ctx context.Context, conf *oauth2.Config) (*oauth2.Token, error) {
	if conf.Endpoint.DeviceAuthURL == "" {
		return nil, failure(errors.New("the issuer offers no device flow (no device_authorization_endpoint); log in with --username"))
	}
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		return nil, failure(fmt.Errorf("start the device flow: %w", loginError(err)))
	}
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(a.stderr, "Open %s\n(or %s and enter the code %s)\n", da.VerificationURIComplete, da.VerificationURI, da.UserCode)
	} else {
		fmt.Fprintf(a.stderr, "Open %s and enter the code %s\n", da.VerificationURI, da.UserCode)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		return nil, failure(fmt.Errorf("device flow: %w", loginError(err)))
	}
	return tok, nil
}

// loginError shortens an OAuth2 error to its code and description.
func loginError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		msg := re.ErrorCode
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		return errors.New(msg)
	}
	return err
}

// terminal reports whether stdin is an interactive terminal.
func (a *app) terminal() bool {
	f, ok := a.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// readLine reads one line without its line ending.
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func newLogoutCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Remove the token stored by greyctl login",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := a.loginPath()
			if err != nil {
				return failure(err)
			}
			err = os.Remove(path)
			if errors.Is(err, fs.ErrNotExist) {
				_, err = fmt.Fprintln(a.stdout, "not logged in")
				return err
			}
			if err != nil {
				return failure(fmt.Errorf("remove the stored login: %w", err))
			}
			_, err = fmt.Fprintf(a.stdout, "logged out (removed %s)\n", path)
			return err
		},
	}
}
