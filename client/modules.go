package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/grey-distributed/grey/greyerr"
)

// Module describes a WebAssembly module in the tenant's module store.
type Module struct {
	// Digest is "sha256:" and the hex SHA-256 of the module's bytes; tasks
	// of kind wasm name the module by it.
	Digest string `json:"digest"`
	// Size is the module's length in bytes.
	Size int64 `json:"size"`
	// TenantID owns the module.
	TenantID string `json:"tenant_id"`
	// CreatedAt is when the module was first stored.
	CreatedAt time.Time `json:"created_at"`
}

// WasmContentType is the media type of module uploads and downloads.
const WasmContentType = "application/wasm"

// maxModuleDownload bounds a module download (the server's own limit is
// executors.wasm.max_module_bytes, 32 MiB by default).
const maxModuleDownload = 1 << 30

// PushModule uploads a WebAssembly module (POST /api/v1/modules) for the
// client's tenant. The server compiles it first: an invalid module is an
// InvalidArgument error that says why. Uploading the same bytes again
// returns the stored module.
func (c *Client) PushModule(ctx context.Context, wasm []byte) (*Module, error) {
	return c.PushModuleProgress(ctx, wasm, nil)
}

// PushModuleProgress is PushModule calling progress, when not nil, as the
// module is sent with the bytes sent so far and its size (from zero again
// when the push fails over to another server).
func (c *Client) PushModuleProgress(ctx context.Context, wasm []byte, progress func(sent, total int64)) (*Module, error) {
	var m Module
	if err := c.rawCall(ctx, http.MethodPost, "/api/v1/modules", "", wasm, &m, progress); err != nil {
		return nil, err
	}
	return &m, nil
}

// GetModule describes one of the tenant's modules (GET
// /api/v1/modules/{digest}); another tenant's module is NotFound.
func (c *Client) GetModule(ctx context.Context, digest string) (*Module, error) {
	p, err := modulePath(digest, "")
	if err != nil {
		return nil, err
	}
	var m Module
	if err := c.do(ctx, http.MethodGet, p, nil, nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ListModules returns the tenant's modules, by digest.
func (c *Client) ListModules(ctx context.Context) ([]Module, error) {
	var resp struct {
		Modules []Module `json:"modules"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/modules", nil, nil, &resp); err != nil {
		return nil, err
	}
	return resp.Modules, nil
}

// ModuleContent downloads the bytes of one of the tenant's modules (GET
// /api/v1/modules/{digest}/content), checked against the digest.
func (c *Client) ModuleContent(ctx context.Context, digest string) ([]byte, error) {
	return c.ModuleContentFor(ctx, "", digest)
}

// ModuleContentFor is ModuleContent acting for tenant ("" = the client's
// tenant): a worker runs tasks of many tenants and fetches each task's
// module as its tenant.
func (c *Client) ModuleContentFor(ctx context.Context, tenant, digest string) ([]byte, error) {
	p, err := modulePath(digest, "/content")
	if err != nil {
		return nil, err
	}
	var b []byte
	if err := c.rawCall(ctx, http.MethodGet, p, tenant, nil, &b); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	if want := strings.ToLower(strings.TrimPrefix(digest, "sha256:")); hex.EncodeToString(sum[:]) != want {
		return nil, &greyerr.Error{Code: greyerr.Internal, Message: fmt.Sprintf("module %s: downloaded bytes do not match the digest", digest)}
	}
	return b, nil
}

func modulePath(digest, suffix string) (string, error) {
	if digest == "" {
		return "", greyerr.Invalid("digest", "a module digest is required")
	}
	return "/api/v1/modules/" + url.PathEscape(digest) + suffix, nil
}

// rawCall sends a request whose body (if any) is a module, as tenant ("" =
// the client's), failing over like every call. out is *[]byte for the raw
// response body, or a value to decode JSON into.
func (c *Client) rawCall(ctx context.Context, method, path, tenant string, body []byte, out any, progress ...func(sent, total int64)) error {
	var onSent func(sent, total int64)
	if len(progress) > 0 {
		onSent = progress[0]
	}
	n := len(c.servers)
	start := int(c.preferred.Load())
	var lastErr error
	for i := range n {
		idx := (start + i) % n
		req, err := c.newRequest(ctx, c.servers[idx], &request{method: method, path: path})
		if err != nil {
			return err
		}
		if body != nil {
			total := int64(len(body))
			req.Body = io.NopCloser(&progressReader{r: bytes.NewReader(body), total: total, f: onSent})
			req.GetBody = func() (io.ReadCloser, error) {
				return io.NopCloser(&progressReader{r: bytes.NewReader(body), total: total, f: onSent}), nil
			}
			req.ContentLength = int64(len(body))
			req.Header.Set("Content-Type", WasmContentType)
		}
		if _, raw := out.(*[]byte); raw {
			req.Header.Set("Accept", WasmContentType)
		}
		if tenant != "" {
			req.Header.Set(TenantHeader, tenant)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			lastErr = &greyerr.Error{Code: greyerr.Unavailable, Message: fmt.Sprintf("%s %s: %s did not answer", method, path, c.servers[idx].Host), Err: err}
			if !canFailOver(method, err) {
				return lastErr
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
			return decodeError(resp)
		}
		defer resp.Body.Close()
		if b, ok := out.(*[]byte); ok {
			data, err := io.ReadAll(io.LimitReader(resp.Body, maxModuleDownload))
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return greyerr.Wrap(greyerr.Unavailable, err, "%s %s: read response", method, path)
			}
			*b = data
			return nil
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return greyerr.Wrap(greyerr.Internal, err, "%s %s: decode %d response", method, path, resp.StatusCode)
		}
		return nil
	}
	return lastErr
}
