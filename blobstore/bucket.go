package blobstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/internal/retry"
	"github.com/grey-distributed/grey/task"
)

// Tag keys Grey puts on every object it writes (DESIGN §6).
const (
	// TagTenant names the tenant that owns the object.
	TagTenant = "grey-tenant-id"
	// TagTask names the task that wrote the object, where one did.
	TagTask = "grey-task-id"
	// TagEnvironment is the deployment (tenants.cost.environment).
	TagEnvironment = "grey-environment"
)

// Limits of tags, the strictest of the three clouds (S3 object tags:
// keys up to 128 characters, values up to 256).
const (
	MaxTagKeyLen   = 128
	MaxTagValueLen = 256
)

// Options configure a Bucket.
type Options struct {
	// Name labels the bucket's metrics ("modules", "backups", ...).
	Name string
	// Environment is the grey-environment tag on every object written.
	Environment string
	// CostTags are added to every object written (cloud.cost_tags).
	CostTags map[string]string
	// Env is passed to the driver's opener (Registry.Open).
	Env Env
	// Registerer receives the bucket's metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Retry bounds retries of transient failures; zero values: 4 tries,
	// 50 ms initial interval, 2 s max interval, 30 s in all.
	Retry RetryOptions
}

// RetryOptions bound the retries of a transient failure (Unavailable).
type RetryOptions = retry.Options

// Bucket is the portable blob bucket. A Bucket from New or Registry.Open
// is the whole bucket; Tenant and Prefixed return views of it that share
// its driver. It is safe for concurrent use.
type Bucket struct {
	drv     Driver
	caps    Capabilities
	prefix  string
	tags    map[string]string
	retry   RetryOptions
	metrics *metrics
	name    string
	view    bool
}

// New returns a Bucket over d. It fails when the tags in opts are not
// valid on every cloud, or exceed the driver's MaxTags.
func New(d Driver, opts Options) (*Bucket, error) {
	tags := map[string]string{}
	maps.Copy(tags, opts.CostTags)
	if opts.Environment != "" {
		tags[TagEnvironment] = opts.Environment
	}
	if err := ValidateTags(tags); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = "default"
	}
	b := &Bucket{drv: d, caps: d.Capabilities(), tags: tags, retry: opts.Retry.WithDefaults(30 * time.Second), metrics: m, name: name}
	// Leave room for the tenant and task tags.
	if b.caps.MaxTags > 0 && len(tags)+2 > b.caps.MaxTags {
		return nil, greyerr.Invalid("cloud.cost_tags", "%d tags with %s and %s exceed the %d tags a %s object can carry",
			len(tags), TagTenant, TagTask, b.caps.MaxTags, b.caps.Scheme)
	}
	return b, nil
}

// ValidateTags checks tag keys and values against the strictest cloud's
// rules: keys 1 to 128 characters, values up to 256, letters, digits,
// spaces and + - = . _ : / only.
func ValidateTags(tags map[string]string) error {
	for k, v := range tags {
		switch {
		case k == "" || len(k) > MaxTagKeyLen:
			return greyerr.Invalid("cloud.cost_tags", "tag key %q must be 1 to %d characters", short(k), MaxTagKeyLen)
		case len(v) > MaxTagValueLen:
			return greyerr.Invalid("cloud.cost_tags", "tag %q: value is longer than %d characters", k, MaxTagValueLen)
		case !tagChars(k):
			return greyerr.Invalid("cloud.cost_tags", "tag key %q may hold only letters, digits, spaces and + - = . _ : /", short(k))
		case !tagChars(v):
			return greyerr.Invalid("cloud.cost_tags", "tag %q: value %q may hold only letters, digits, spaces and + - = . _ : /", k, short(v))
		}
	}
	return nil
}

func tagChars(s string) bool {
	for _, r := range s {
		ok := r == ' ' || strings.ContainsRune("+-=._:/", r) ||
			('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Capabilities are the driver's.
func (b *Bucket) Capabilities() Capabilities { return b.caps }

// Prefix is the view's key prefix ("" for the whole bucket).
func (b *Bucket) Prefix() string { return b.prefix }

// Tags are the tags every object written through b carries (copy).
func (b *Bucket) Tags() map[string]string { return maps.Clone(b.tags) }

// Prefixed returns a view of b whose keys live under prefix + "/". prefix
// must be a valid key; the view's keys are valid keys relative to it, so
// they cannot leave it.
func (b *Bucket) Prefixed(prefix string) (*Bucket, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	if err := ValidateKey(prefix); err != nil {
		return nil, err
	}
	v := *b
	v.prefix = b.prefix + prefix + "/"
	v.tags = maps.Clone(b.tags)
	v.view = true
	return &v, nil
}

// Tenant returns the tenant's view: keys under tenants/<id>/, every object
// tagged grey-tenant-id=<id>. A tenant view of a tenant view is refused.
func (b *Bucket) Tenant(id string) (*Bucket, error) {
	if !task.ValidTenant(id) {
		return nil, greyerr.Invalid("tenant", "%q is not a valid tenant id", id)
	}
	if _, ok := b.tags[TagTenant]; ok {
		return nil, greyerr.New(greyerr.FailedPrecondition, "blobstore: bucket is already tenant %s's view", b.tags[TagTenant])
	}
	v, err := b.Prefixed("tenants/" + id)
	if err != nil {
		return nil, err
	}
	v.tags[TagTenant] = id
	return v, nil
}

// WriteOptions configure one write through a Bucket.
type WriteOptions struct {
	// ContentType is the object's media type.
	ContentType string
	// Metadata are stored with the object.
	Metadata map[string]string
	// TaskID, when a task owns the object, becomes the grey-task-id tag.
	TaskID string
}

func (b *Bucket) key(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	full := b.prefix + key
	if len(full) > MaxKeyBytes {
		return "", greyerr.Invalid("key", "with its prefix %q the key is %d bytes, more than %d", b.prefix, len(full), MaxKeyBytes)
	}
	return full, nil
}

func (b *Bucket) putOptions(o *WriteOptions) (PutOptions, error) {
	if o == nil {
		o = &WriteOptions{}
	}
	tags := maps.Clone(b.tags)
	if o.TaskID != "" {
		tags[TagTask] = o.TaskID
	}
	if err := ValidateTags(tags); err != nil {
		return PutOptions{}, err
	}
	if len(tags) > 0 && b.caps.Tags == TagsNone {
		return PutOptions{}, greyerr.New(greyerr.Unimplemented, "blobstore: the %s driver cannot store tags, and Grey tags every object it writes", b.caps.Scheme)
	}
	md := map[string]string{}
	for k, v := range o.Metadata {
		md[strings.ToLower(k)] = v
	}
	return PutOptions{ContentType: o.ContentType, Metadata: md, Tags: tags}, nil
}

// Put writes data to key (retried while the failure is transient).
func (b *Bucket) Put(ctx context.Context, key string, data []byte, opts *WriteOptions) error {
	full, err := b.key(key)
	if err != nil {
		return err
	}
	po, err := b.putOptions(opts)
	if err != nil {
		return err
	}
	return b.do(ctx, "put", int64(len(data)), func() error {
		return b.drv.Put(ctx, full, bytes.NewReader(data), po)
	})
}

// Upload writes r's bytes to key. It is not retried (r cannot be read
// twice); callers retry the whole upload.
func (b *Bucket) Upload(ctx context.Context, key string, r io.Reader, opts *WriteOptions) (int64, error) {
	full, err := b.key(key)
	if err != nil {
		return 0, err
	}
	po, err := b.putOptions(opts)
	if err != nil {
		return 0, err
	}
	cr := &countReader{r: r}
	err = b.once("upload", func() error { return b.drv.Put(ctx, full, cr, po) })
	b.metrics.bytes.WithLabelValues(b.name, "upload").Add(float64(cr.n))
	return cr.n, err
}

// Get reads key whole, refusing an object over max bytes (max <= 0: no
// limit) with TooLarge.
func (b *Bucket) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	full, err := b.key(key)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = b.do(ctx, "get", 0, func() error {
		r, err := b.drv.NewReader(ctx, full)
		if err != nil {
			return err
		}
		defer r.Close()
		src := io.Reader(r)
		if max > 0 {
			src = io.LimitReader(r, max+1)
		}
		data, err := io.ReadAll(src)
		if err != nil {
			return greyerr.Wrap(greyerr.Unavailable, err, "read %s", short(key))
		}
		if max > 0 && int64(len(data)) > max {
			return greyerr.New(greyerr.TooLarge, "object %s is larger than %d bytes", short(key), max)
		}
		out = data
		return nil
	})
	b.metrics.bytes.WithLabelValues(b.name, "get").Add(float64(len(out)))
	return out, err
}

// NewReader opens key for reading (opening is retried; reading is not).
func (b *Bucket) NewReader(ctx context.Context, key string) (io.ReadCloser, error) {
	full, err := b.key(key)
	if err != nil {
		return nil, err
	}
	var r io.ReadCloser
	err = b.do(ctx, "open", 0, func() (err error) {
		r, err = b.drv.NewReader(ctx, full)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &countReadCloser{ReadCloser: r, done: func(n int64) { b.metrics.bytes.WithLabelValues(b.name, "read").Add(float64(n)) }}, nil
}

// Attributes describes key.
func (b *Bucket) Attributes(ctx context.Context, key string) (Attributes, error) {
	full, err := b.key(key)
	if err != nil {
		return Attributes{}, err
	}
	var a Attributes
	err = b.do(ctx, "attributes", 0, func() (err error) {
		a, err = b.drv.Attributes(ctx, full)
		return err
	})
	return a, err
}

// ReadTags reads key's tags back from the service.
func (b *Bucket) ReadTags(ctx context.Context, key string) (map[string]string, error) {
	full, err := b.key(key)
	if err != nil {
		return nil, err
	}
	var t map[string]string
	err = b.do(ctx, "tags", 0, func() (err error) {
		t, err = b.drv.Tags(ctx, full)
		return err
	})
	return t, err
}

// Exists reports whether key exists.
func (b *Bucket) Exists(ctx context.Context, key string) (bool, error) {
	_, err := b.Attributes(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case greyerr.Is(err, greyerr.NotFound):
		return false, nil
	}
	return false, err
}

// MaxPageSize bounds a List page.
const MaxPageSize = 1000

// List returns a page of the objects whose keys (relative to b) start with
// prefix, in key order, and the next page's token ("" after the last).
// pageSize <= 0 means MaxPageSize.
func (b *Bucket) List(ctx context.Context, prefix string, pageSize int, token string) ([]Object, string, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, "", err
	}
	if pageSize <= 0 || pageSize > MaxPageSize {
		pageSize = MaxPageSize
	}
	var objs []Object
	var next string
	err := b.do(ctx, "list", 0, func() (err error) {
		objs, next, err = b.drv.List(ctx, b.prefix+prefix, pageSize, token)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	out := objs[:0]
	for _, o := range objs {
		k, ok := strings.CutPrefix(o.Key, b.prefix)
		if !ok { // a driver bug; never show keys outside the view
			continue
		}
		o.Key = k
		out = append(out, o)
	}
	return out, next, nil
}

// Walk calls f for every object under prefix, in key order, until f
// returns an error (returned) or the objects end.
func (b *Bucket) Walk(ctx context.Context, prefix string, f func(Object) error) error {
	token := ""
	for {
		objs, next, err := b.List(ctx, prefix, 0, token)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := f(o); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		token = next
	}
}

// Delete removes key (NotFound if missing).
func (b *Bucket) Delete(ctx context.Context, key string) error {
	full, err := b.key(key)
	if err != nil {
		return err
	}
	return b.do(ctx, "delete", 0, func() error { return b.drv.Delete(ctx, full) })
}

// MaxSignedURLExpiry bounds a signed URL's life (S3's limit, 7 days).
const MaxSignedURLExpiry = 7 * 24 * time.Hour

// SignedURL returns a URL granting method (GET or PUT) on key for expiry
// (1 s to 7 days). A driver that cannot sign answers Unimplemented.
func (b *Bucket) SignedURL(ctx context.Context, key, method string, expiry time.Duration, contentType string) (string, error) {
	full, err := b.key(key)
	if err != nil {
		return "", err
	}
	if method != http.MethodGet && method != http.MethodPut {
		return "", greyerr.Invalid("method", "must be GET or PUT, got %q", method)
	}
	if expiry < time.Second || expiry > MaxSignedURLExpiry {
		return "", greyerr.Invalid("expiry", "must be between 1s and %s, got %s", MaxSignedURLExpiry, expiry)
	}
	if !b.caps.SignedURL {
		return "", greyerr.New(greyerr.Unimplemented, "blobstore: the %s bucket cannot sign URLs (see docs/BLOB.md)", b.caps.Scheme)
	}
	var u string
	err = b.do(ctx, "sign", 0, func() (err error) {
		u, err = b.drv.SignedURL(ctx, full, SignedURLOptions{Method: method, Expiry: expiry, ContentType: contentType})
		return err
	})
	return u, err
}

// As sets i to the driver's native client (see the driver's doc).
func (b *Bucket) As(i any) bool { return b.drv.As(i) }

// Close closes the driver; closing a view does nothing.
func (b *Bucket) Close() error {
	if b.view {
		return nil
	}
	return b.drv.Close()
}

// do runs op, retrying it with exponential backoff while it fails with
// Unavailable, and records the operation's metrics.
func (b *Bucket) do(ctx context.Context, op string, n int64, f func() error) error {
	start := time.Now()
	err := retry.Unavailable(ctx, b.retry, f, func() { b.metrics.retries.WithLabelValues(b.name, op).Inc() })
	err = b.wrap(op, err)
	b.observe(op, start, err)
	if err == nil && n > 0 {
		b.metrics.bytes.WithLabelValues(b.name, op).Add(float64(n))
	}
	return err
}

// once runs op without retries, recording its metrics.
func (b *Bucket) once(op string, f func() error) error {
	start := time.Now()
	err := b.wrap(op, f())
	b.observe(op, start, err)
	return err
}

func (b *Bucket) observe(op string, start time.Time, err error) {
	code := "ok"
	if err != nil {
		code = string(greyerr.CodeOf(err))
	}
	b.metrics.ops.WithLabelValues(b.name, op, code).Inc()
	b.metrics.seconds.WithLabelValues(b.name, op).Observe(time.Since(start).Seconds())
}

// wrap makes err a greyerr naming the operation; an uncoded driver error
// is Internal (a driver must code its errors) and a context error keeps
// its code.
func (b *Bucket) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var ge *greyerr.Error
	if errors.As(err, &ge) {
		return fmt.Errorf("blobstore %s %s: %w", b.caps.Scheme, op, err)
	}
	code := greyerr.CodeOf(err)
	if code == greyerr.Unknown {
		code = greyerr.Internal
	}
	return greyerr.Wrap(code, err, "blobstore %s %s", b.caps.Scheme, op)
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type countReadCloser struct {
	io.ReadCloser
	n    int64
	done func(int64)
}

func (c *countReadCloser) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countReadCloser) Close() error {
	if c.done != nil {
		c.done(c.n)
		c.done = nil
	}
	return c.ReadCloser.Close()
}
