package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/proof"
	"github.com/grey-distributed/grey/task"
)

// DefaultInlineLimit is the payload size above which Submit uploads the
// payload and sends a payload_ref instead (the server's default
// tasks.max_payload_bytes). WithInlineLimit changes it.
const DefaultInlineLimit = 1 << 20

// WithInlineLimit sets the payload size above which Submit uploads the
// payload through a signed URL and submits a payload_ref (0: never).
func WithInlineLimit(n int) Option { return func(c *Client) { c.inlineLimit = n; c.inlineSet = true } }

// Upload is an upload reserved by POST /api/v1/uploads.
type Upload struct {
	// ID names the upload.
	ID string `json:"id"`
	// PayloadRef is the payload_ref to submit with.
	PayloadRef string `json:"payload_ref"`
	// Method is the HTTP method of the upload (PUT).
	Method string `json:"method"`
	// URL is the signed URL (absolute: Grey-served paths are resolved
	// against the server the client used).
	URL string `json:"url"`
	// Headers must be sent with the upload.
	Headers map[string]string `json:"headers,omitempty"`
	// ExpiresAt is when the URL stops working.
	ExpiresAt time.Time `json:"expires_at"`
}

// SignedURL is a signed GET URL of a stored object.
type SignedURL struct {
	// URL is absolute (Grey-served paths are resolved against the server).
	URL string `json:"url"`
	// ExpiresAt is when it stops working.
	ExpiresAt time.Time `json:"expires_at"`
	// Size and SHA256 describe the object.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// absolute resolves a Grey-served signed path against the preferred server.
func (c *Client) absolute(u string) (string, error) {
	if !strings.HasPrefix(u, "/") {
		return u, nil
	}
	base := *c.servers[int(c.preferred.Load())%len(c.servers)]
	ref, err := url.Parse(u)
	if err != nil {
		return "", greyerr.Wrap(greyerr.Internal, err, "signed URL %q", u)
	}
	base.Path = strings.TrimSuffix(base.Path, "/") + ref.Path
	base.RawPath = ""
	base.RawQuery = ref.RawQuery
	return base.String(), nil
}

// CreateUpload reserves an upload of size bytes (0: unknown) with a URL
// that lasts expiry (0: the server's default).
func (c *Client) CreateUpload(ctx context.Context, size int64, expiry time.Duration) (*Upload, error) {
	in := map[string]any{}
	if size > 0 {
		in["size"] = size
	}
	if expiry > 0 {
		in["expiry"] = expiry.String()
	}
	var up Upload
	if err := c.do(ctx, http.MethodPost, "/api/v1/uploads", nil, in, &up); err != nil {
		return nil, err
	}
	u, err := c.absolute(up.URL)
	if err != nil {
		return nil, err
	}
	up.URL = u
	return &up, nil
}

// PutSigned sends data to a signed upload URL (no Grey credentials: the
// signature is the credential).
func (c *Client) PutSigned(ctx context.Context, up *Upload, data []byte) error {
	req, err := http.NewRequestWithContext(ctx, up.Method, up.URL, bytes.NewReader(data))
	if err != nil {
		return greyerr.Wrap(greyerr.InvalidArgument, err, "upload URL")
	}
	req.ContentLength = int64(len(data))
	for k, v := range up.Headers {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return greyerr.Wrap(greyerr.Unavailable, err, "upload to the signed URL")
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			return decodeError(resp)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &greyerr.Error{Code: codeOfStatus(resp.StatusCode), Message: fmt.Sprintf("upload refused: %s: %s", resp.Status, strings.TrimSpace(string(b)))}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

func codeOfStatus(status int) greyerr.Code {
	switch status {
	case http.StatusForbidden, http.StatusUnauthorized:
		return greyerr.PermissionDenied
	case http.StatusNotFound:
		return greyerr.NotFound
	case http.StatusRequestEntityTooLarge:
		return greyerr.TooLarge
	case http.StatusBadRequest:
		return greyerr.InvalidArgument
	}
	if status >= 500 {
		return greyerr.Unavailable
	}
	return greyerr.Unknown
}

// UploadPayload uploads payload (the payload's JSON bytes) and returns the
// payload_ref to submit a task with.
func (c *Client) UploadPayload(ctx context.Context, payload []byte) (string, error) {
	up, err := c.CreateUpload(ctx, int64(len(payload)), 0)
	if err != nil {
		return "", err
	}
	if err := c.PutSigned(ctx, up, payload); err != nil {
		return "", err
	}
	return up.PayloadRef, nil
}

// inlineWanted reports whether a payload of n bytes is over the inline
// limit (and so goes by upload).
func (c *Client) inlineWanted(n int) bool {
	limit := c.inlineLimit
	if !c.inlineSet {
		limit = DefaultInlineLimit
	}
	return limit > 0 && n > limit
}

// largePayload moves a spec's payload over the inline limit to an upload.
func (c *Client) largePayload(ctx context.Context, spec *task.Spec) error {
	if !c.inlineWanted(len(spec.Payload)) || spec.PayloadRef != "" {
		return nil
	}
	ref, err := c.UploadPayload(ctx, spec.Payload)
	if err != nil {
		return fmt.Errorf("upload the %d-byte payload: %w", len(spec.Payload), err)
	}
	spec.Payload, spec.PayloadRef = nil, ref
	return nil
}

// Result returns a completed task's result bytes, fetching a stored result
// (result_ref) from the server and checking its SHA-256.
func (c *Client) Result(ctx context.Context, id task.ID) ([]byte, error) {
	p, err := taskPath(id, "/result")
	if err != nil {
		return nil, err
	}
	var b []byte
	if err := c.rawCall(ctx, http.MethodGet, p, "", nil, &b); err != nil {
		return nil, err
	}
	return b, nil
}

// ResultURL returns a signed GET URL of a task's stored result, lasting
// expiry (0: the server's default).
func (c *Client) ResultURL(ctx context.Context, id task.ID, expiry time.Duration) (*SignedURL, error) {
	p, err := taskPath(id, "/result/url")
	if err != nil {
		return nil, err
	}
	var q url.Values
	if expiry > 0 {
		q = url.Values{"expiry": {expiry.String()}}
	}
	var su SignedURL
	if err := c.do(ctx, http.MethodGet, p, q, nil, &su); err != nil {
		return nil, err
	}
	if su.URL, err = c.absolute(su.URL); err != nil {
		return nil, err
	}
	return &su, nil
}

// Object returns the bytes of an object of the tenant's task data, by key
// relative to the tenant's prefix (uploads/..., results/...).
func (c *Client) Object(ctx context.Context, key string) ([]byte, error) {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	var b []byte
	if err := c.rawCall(ctx, http.MethodGet, "/api/v1/objects/"+strings.Join(segs, "/"), "", nil, &b); err != nil {
		return nil, err
	}
	return b, nil
}

// fillResult fetches the stored result of a completed task whose result is
// by reference, so that callers see Result as if it were inline.
func (c *Client) fillResult(ctx context.Context, t *task.Task) error {
	if t == nil || t.ResultRef == nil || len(t.Result) > 0 || t.Status != task.Completed {
		return nil
	}
	b, err := c.Result(ctx, t.ID)
	if err != nil {
		return fmt.Errorf("fetch the stored result %s: %w", t.ResultRef.Ref, err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != t.ResultRef.SHA256 {
		return &greyerr.Error{Code: greyerr.FailedPrecondition, Message: fmt.Sprintf("stored result %s has sha256 %s, the task recorded %s", t.ResultRef.Ref, got, t.ResultRef.SHA256)}
	}
	if ai.IsBinaryBody(b) {
		// An inference result stored in the binary form: Result is the
		// task's JSON, so it gets the response's JSON (Result(ctx, id)
		// gives the stored bytes).
		if b, err = ai.BinaryToJSON(b); err != nil {
			return fmt.Errorf("decode the stored binary result %s: %w", t.ResultRef.Ref, err)
		}
	}
	t.Result = b
	return nil
}

// ResultJSON returns a completed task's result as JSON: Result's bytes,
// with a result stored in the binary form (an inference response over the
// inline limit, docs/INFERENCE.md) decoded to its JSON form.
func (c *Client) ResultJSON(ctx context.Context, id task.ID) ([]byte, error) {
	b, err := c.Result(ctx, id)
	if err != nil {
		return nil, err
	}
	return ai.BinaryToJSON(b)
}

// ObjectCheck is the outcome of checking one stored object a proof names.
type ObjectCheck struct {
	// Object is what the proof names.
	Object proof.Object
	// Got is the SHA-256 of the downloaded bytes ("" when the download
	// failed).
	Got string
	// Size is the downloaded length.
	Size int64
	// Err is why the object does not match ("" when it does).
	Err string
}

// VerifyObjects downloads every stored object of a task's proof execution
// and hashes it (storage proofs, docs/PROOFS.md). It returns one check per
// object and an error naming the first object whose digest (or size)
// differs from the proof, or that cannot be fetched.
func (c *Client) VerifyObjects(ctx context.Context, objs []proof.Object) ([]ObjectCheck, error) {
	out := make([]ObjectCheck, len(objs))
	var first error
	for i, o := range objs {
		out[i].Object = o
		b, err := c.Object(ctx, o.Name)
		if err != nil {
			out[i].Err = err.Error()
			if first == nil {
				first = fmt.Errorf("stored object %s (%s): %w", o.Name, o.Role, err)
			}
			continue
		}
		sum := sha256.Sum256(b)
		out[i].Got, out[i].Size = hex.EncodeToString(sum[:]), int64(len(b))
		want := o.Digest[proof.DigestAlgorithm]
		if out[i].Got != want || out[i].Size != o.Size {
			out[i].Err = fmt.Sprintf("sha256 %s (%d bytes), the proof names sha256 %s (%d bytes)", out[i].Got, out[i].Size, want, o.Size)
			if first == nil {
				first = &greyerr.Error{Code: greyerr.FailedPrecondition, Reason: "object_changed",
					Message: fmt.Sprintf("stored object %s (%s) changed after its proof: %s", o.Name, o.Role, out[i].Err)}
			}
		}
	}
	return out, first
}
