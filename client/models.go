package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
)

// ModelInfo is a model of the tenant's registry: its versions and aliases.
type ModelInfo struct {
	// Name of the model.
	Name string `json:"name"`
	// Versions of the model, oldest first, each with its aliases.
	Versions []ai.Model `json:"versions"`
	// Aliases map each alias to the version it names.
	Aliases map[string]string `json:"aliases"`
}

// PushModelSpec names the model version a push creates.
type PushModelSpec struct {
	// Name of the model.
	Name string
	// Version to create (versions are immutable).
	Version string
	// Framework the artifact is for: a TorchScript file for ai.PyTorch, the
	// tar of a SavedModel directory for ai.TensorFlow (see
	// modelstore.TarDir).
	Framework ai.Framework
	// Size of the artifact in bytes, or -1 when unknown (sent chunked).
	Size int64
	// Progress, when set, is called as the artifact is sent with the bytes
	// sent so far and Size.
	Progress func(sent, total int64)
}

// PushModel uploads a model artifact, streamed from r (POST
// /api/v1/models/{name}/versions/{version}?framework=…), and returns the
// stored version. The server checks the artifact's structure: a file that
// is not a model of the framework is an InvalidArgument error saying why.
// Pushing a version again with the same bytes returns it; with other bytes
// the error is AlreadyExists. When r is an io.Seeker the push fails over
// to another server if the first cannot be reached.
func (c *Client) PushModel(ctx context.Context, spec PushModelSpec, r io.Reader) (*ai.Model, error) {
	if err := ai.ValidName("name", spec.Name); err != nil {
		return nil, err
	}
	if err := ai.ValidName("version", spec.Version); err != nil {
		return nil, err
	}
	if !spec.Framework.Valid() {
		return nil, greyerr.Invalid("framework", "must be pytorch or tensorflow, got %q", spec.Framework)
	}
	p := "/api/v1/models/" + url.PathEscape(spec.Name) + "/versions/" + url.PathEscape(spec.Version)
	q := url.Values{"framework": {string(spec.Framework)}}
	contentType := "application/octet-stream"
	if spec.Framework == ai.TensorFlow {
		contentType = "application/x-tar"
	}
	seeker, _ := r.(io.Seeker)
	var lastErr error
	n := len(c.servers)
	start := int(c.preferred.Load())
	for i := range n {
		idx := (start + i) % n
		if i > 0 {
			if seeker == nil {
				return nil, lastErr
			}
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return nil, lastErr
			}
		}
		req, err := c.newRequest(ctx, c.servers[idx], &request{method: http.MethodPost, path: p, query: q})
		if err != nil {
			return nil, err
		}
		body := &progressReader{r: r, total: spec.Size, f: spec.Progress}
		req.Body = io.NopCloser(body)
		req.ContentLength = spec.Size
		if spec.Size < 0 {
			req.ContentLength = -1
		} else if spec.Size == 0 {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = &greyerr.Error{Code: greyerr.Unavailable, Message: fmt.Sprintf("POST %s: %s did not answer", p, c.servers[idx].Host), Err: err}
			if !canFailOver(http.MethodPost, err) {
				return nil, lastErr
			}
			continue
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			lastErr = decodeError(resp)
			continue
		}
		if idx != start {
			c.preferred.Store(int32(idx))
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return nil, decodeError(resp)
		}
		defer resp.Body.Close()
		var m ai.Model
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			return nil, greyerr.Wrap(greyerr.Internal, err, "POST %s: decode %d response", p, resp.StatusCode)
		}
		return &m, nil
	}
	return nil, lastErr
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r     io.Reader
	sent  int64
	total int64
	f     func(sent, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	if p.f != nil && (n > 0 || err == io.EOF) {
		p.f(p.sent, p.total)
	}
	return n, err
}

// ListModelsOptions select the versions ListModels returns.
type ListModelsOptions struct {
	// Name keeps the models whose name starts with it.
	Name string
	// Cursor is the next cursor of the page before.
	Cursor string
	// Limit bounds the page (the server's default: 100).
	Limit int
}

// ListModels returns a page of the tenant's model versions, by name then
// version, and the cursor of the next page ("" on the last).
func (c *Client) ListModels(ctx context.Context, o ListModelsOptions) ([]ai.Model, string, error) {
	q := url.Values{}
	if o.Name != "" {
		q.Set("name", o.Name)
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var resp struct {
		Models     []ai.Model `json:"models"`
		NextCursor string     `json:"next_cursor"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/models", q, nil, &resp); err != nil {
		return nil, "", err
	}
	return resp.Models, resp.NextCursor, nil
}

// GetModel describes one of the tenant's models: its versions and
// aliases. Another tenant's model is NotFound.
func (c *Client) GetModel(ctx context.Context, name string) (*ModelInfo, error) {
	if err := ai.ValidName("name", name); err != nil {
		return nil, err
	}
	var m ModelInfo
	if err := c.do(ctx, http.MethodGet, "/api/v1/models/"+url.PathEscape(name), nil, nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// GetModelVersion describes the version ref names ("name:version",
// "name@alias", "name" for latest) of the tenant's models.
func (c *Client) GetModelVersion(ctx context.Context, ref string) (*ai.Model, error) {
	r, err := ai.ParseModelRef(ref)
	if err != nil {
		return nil, err
	}
	return c.ResolveModelFor(ctx, "", r)
}

// ResolveModelFor returns the version ref names (an alias resolved),
// acting for tenant ("" = the client's tenant): a worker resolves a
// task's model as the task's tenant.
func (c *Client) ResolveModelFor(ctx context.Context, tenant string, ref ai.ModelRef) (*ai.Model, error) {
	if err := ai.ValidName("model", ref.Name); err != nil {
		return nil, err
	}
	p := "/api/v1/models/" + url.PathEscape(ref.Name)
	switch {
	case ref.Version != "" && ref.Alias == "":
		p += "/versions/" + url.PathEscape(ref.Version)
	case ref.Alias != "" && ref.Version == "":
		p += "/aliases/" + url.PathEscape(ref.Alias)
	default:
		return nil, greyerr.Invalid("model", "a reference names a version or an alias")
	}
	var m ai.Model
	if err := c.doAs(ctx, tenant, http.MethodGet, p, nil, nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ModelContentFor streams the artifact digest of tenant's models ("" =
// the client's tenant; GET /api/v1/models/{digest}/content). The reader
// checks the bytes against the digest: instead of io.EOF, bytes that do
// not match end with an Internal error. The caller closes it.
func (c *Client) ModelContentFor(ctx context.Context, tenant, digest string) (io.ReadCloser, error) {
	h := strings.ToLower(strings.TrimPrefix(digest, "sha256:"))
	if _, err := hex.DecodeString(h); err != nil || len(h) != 2*sha256.Size {
		return nil, greyerr.Invalid("digest", "must be a model digest \"sha256:<64 hex digits>\", got %q", digest)
	}
	p := "/api/v1/models/" + url.PathEscape("sha256:"+h) + "/content"
	resp, err := c.send(ctx, &request{method: http.MethodGet, path: p, accept: "application/octet-stream", tenant: tenant})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, decodeError(resp)
	}
	return &digestReader{rc: resp.Body, h: sha256.New(), want: h, digest: digest}, nil
}

// digestReader checks a download against its digest at the end.
type digestReader struct {
	rc     io.ReadCloser
	h      hash.Hash
	want   string
	digest string
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.rc.Read(p)
	d.h.Write(p[:n])
	if err == io.EOF && hex.EncodeToString(d.h.Sum(nil)) != d.want {
		return n, &greyerr.Error{Code: greyerr.Internal, Message: fmt.Sprintf("model %s: downloaded bytes do not match the digest", d.digest)}
	}
	if err != nil && err != io.EOF {
		return n, greyerr.Wrap(greyerr.Unavailable, err, "model %s: download cut", d.digest)
	}
	return n, err
}

func (d *digestReader) Close() error { return d.rc.Close() }

// SetAlias points alias of the tenant's model name at version (creating
// or moving it; PUT /api/v1/models/{name}/aliases/{alias}) and returns
// that version. "latest" is managed by pushes and cannot be set.
func (c *Client) SetAlias(ctx context.Context, name, alias, version string) (*ai.Model, error) {
	if err := ai.ValidName("name", name); err != nil {
		return nil, err
	}
	if err := ai.ValidName("alias", alias); err != nil {
		return nil, err
	}
	var m ai.Model
	body := map[string]string{"version": version}
	if err := c.do(ctx, http.MethodPut, "/api/v1/models/"+url.PathEscape(name)+"/aliases/"+url.PathEscape(alias), nil, body, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// DeleteAlias removes alias of the tenant's model name ("latest" cannot
// be deleted).
func (c *Client) DeleteAlias(ctx context.Context, name, alias string) error {
	if err := ai.ValidName("name", name); err != nil {
		return err
	}
	if err := ai.ValidName("alias", alias); err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, "/api/v1/models/"+url.PathEscape(name)+"/aliases/"+url.PathEscape(alias), nil, nil, nil)
}

// DeleteModel removes version of the tenant's model name. It is refused
// (FailedPrecondition) while a user alias names the version.
func (c *Client) DeleteModel(ctx context.Context, name, version string) error {
	if err := ai.ValidName("name", name); err != nil {
		return err
	}
	if err := ai.ValidName("version", version); err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, "/api/v1/models/"+url.PathEscape(name)+"/versions/"+url.PathEscape(version), nil, nil, nil)
}

// ModelSource is an ai.ModelSource over the API: how a worker-only node,
// which cannot read the servers' model registry bucket, resolves a task's
// model and fetches its artifact, as the task's tenant. The servers check
// ai.tenant_models when the task is submitted.
func ModelSource(c *Client) ai.ModelSource { return modelSource{c} }

type modelSource struct{ c *Client }

func (s modelSource) Resolve(ctx context.Context, tenant string, ref ai.ModelRef) (ai.Model, error) {
	m, err := s.c.ResolveModelFor(ctx, tenant, ref)
	if err != nil {
		return ai.Model{}, err
	}
	return *m, nil
}

func (s modelSource) Fetch(ctx context.Context, tenant, digest string) (io.ReadCloser, error) {
	return s.c.ModelContentFor(ctx, tenant, digest)
}
