package config

import (
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// AIConfig is the ai block: the model registry and the inference kind.
// Without runtimes a node does not offer the inference kind; a server still
// keeps the model registry, so tenants can push models that worker-only
// nodes with runtimes serve.
type AIConfig struct {
	// ModelRegistry is the bucket models are stored in (gocloud.dev blob
	// URL, GREY_MODEL_REGISTRY); "" means file://<node.data_dir>/models.
	// Servers of one cluster should share it.
	ModelRegistry string `yaml:"model_registry"`
	// MaxModelBytes bounds one pushed model artifact.
	MaxModelBytes int64 `yaml:"max_model_bytes"`
	// InferenceTimeout is an inference task's timeout when the task sets
	// none (GREY_INFERENCE_TIMEOUT).
	InferenceTimeout Duration `yaml:"inference_timeout"`
	// Runtimes serve the models on this node, tried in order for a
	// model's framework.
	Runtimes []RuntimeConfig `yaml:"runtimes"`
	// CacheBytes bounds the model artifacts a node keeps on local disk
	// (least recently used go first).
	CacheBytes int64 `yaml:"cache_bytes"`
	// CacheDir holds the local copies; "" means <node.data_dir>/model-cache.
	CacheDir string `yaml:"cache_dir"`
	// Concurrency is how many inference tasks a node runs at once; at
	// least batching.max_batch_size, so that batches can fill.
	Concurrency int `yaml:"concurrency"`
	// Batching configures dynamic batching, per model version.
	Batching BatchingConfig `yaml:"batching"`
	// TenantModels, when a tenant is listed, limits the models that
	// tenant's inference tasks may name (model names); unlisted tenants
	// may use all their own models.
	TenantModels map[string][]string `yaml:"tenant_models"`
}

// RuntimeConfig is one model runtime.
type RuntimeConfig struct {
	// Name labels the runtime in metrics, logs and proofs.
	Name string `yaml:"name"`
	// URL opens the runtime: python:///usr/bin/python3?device=auto (a
	// supervised Python process), oip+http://host:port (KServe, Triton),
	// tfserving+http://host:port, mem:// (tests).
	URL string `yaml:"url"`
	// Frameworks it serves (pytorch, tensorflow); empty: every framework
	// the runtime reports.
	Frameworks []string `yaml:"frameworks"`
}

// BatchingConfig configures dynamic batching.
type BatchingConfig struct {
	// MaxBatchSize is the most rows one model call runs (1: no batching).
	MaxBatchSize int `yaml:"max_batch_size"`
	// MaxQueueDelay is how long a request waits for others to join its
	// batch (like Triton's max_queue_delay_microseconds).
	MaxQueueDelay Duration `yaml:"max_queue_delay"`
	// Models overrides the two per model name.
	Models map[string]ModelBatching `yaml:"models"`
}

// ModelBatching overrides batching for one model.
type ModelBatching struct {
	// MaxBatchSize as in BatchingConfig (0: the default).
	MaxBatchSize int `yaml:"max_batch_size"`
	// MaxQueueDelay as in BatchingConfig (0: the default).
	MaxQueueDelay Duration `yaml:"max_queue_delay"`
}

func defaultAI() AIConfig {
	return AIConfig{
		MaxModelBytes:    2048 * MiB,
		InferenceTimeout: Duration(30 * time.Second),
		CacheBytes:       4096 * MiB,
		Concurrency:      64,
		Batching:         BatchingConfig{MaxBatchSize: 32, MaxQueueDelay: Duration(2 * time.Millisecond)},
	}
}

var aiNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

func (v *validator) ai(a *AIConfig) {
	if a.ModelRegistry != "" {
		if u, err := url.Parse(a.ModelRegistry); err != nil || u.Scheme == "" {
			v.fail("ai.model_registry", "must be a bucket URL such as s3://models or file:///var/lib/grey/models, got %q", a.ModelRegistry)
		}
	}
	if a.MaxModelBytes <= 0 {
		v.fail("ai.max_model_bytes", "must be positive, got %d", a.MaxModelBytes)
	}
	v.positive("ai.inference_timeout", a.InferenceTimeout)
	if a.CacheBytes <= 0 {
		v.fail("ai.cache_bytes", "must be positive, got %d", a.CacheBytes)
	}
	if a.Batching.MaxBatchSize < 1 {
		v.fail("ai.batching.max_batch_size", "must be at least 1, got %d", a.Batching.MaxBatchSize)
	}
	v.nonNegative("ai.batching.max_queue_delay", a.Batching.MaxQueueDelay)
	for name, m := range a.Batching.Models {
		if !aiNameRE.MatchString(name) {
			v.fail("ai.batching.models", "%q is not a model name", name)
		}
		if m.MaxBatchSize < 0 {
			v.fail("ai.batching.models."+name+".max_batch_size", "must not be negative, got %d", m.MaxBatchSize)
		}
		v.nonNegative("ai.batching.models."+name+".max_queue_delay", m.MaxQueueDelay)
	}
	if a.Concurrency < a.Batching.MaxBatchSize {
		v.fail("ai.concurrency", "must be at least ai.batching.max_batch_size (%d) so batches can fill, got %d", a.Batching.MaxBatchSize, a.Concurrency)
	}
	names := map[string]bool{}
	for i, r := range a.Runtimes {
		key := "ai.runtimes[" + strconv.Itoa(i) + "]"
		if !aiNameRE.MatchString(r.Name) {
			v.fail(key+".name", "must be a lower-case name (letters, digits, '.', '_', '-'), got %q", r.Name)
		} else if names[r.Name] {
			v.fail(key+".name", "%q names two runtimes", r.Name)
		}
		names[r.Name] = true
		if u, err := url.Parse(r.URL); err != nil || u.Scheme == "" {
			v.fail(key+".url", "must be a runtime URL such as python:///usr/bin/python3 or oip+http://127.0.0.1:8000, got %q", r.URL)
		}
		for _, f := range r.Frameworks {
			v.oneOf(key+".frameworks", f, "pytorch", "tensorflow")
		}
	}
	for tenant, models := range a.TenantModels {
		for _, m := range models {
			if !aiNameRE.MatchString(m) {
				v.fail("ai.tenant_models."+tenant, "%q is not a model name", m)
			}
		}
	}
}
