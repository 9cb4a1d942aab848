package ai

import (
	"context"
	"io"
)

// Kind is the task kind of inference tasks.
const Kind = "inference"

// RequestedOutput names an output a request wants.
type RequestedOutput struct {
	// Name of the model output.
	Name string `json:"name"`
	// Parameters of the output, carried as they came.
	Parameters map[string]any `json:"parameters,omitempty"`
}

// Request is the payload of an inference task: an Open Inference Protocol
// inference request plus the model it is for.
type Request struct {
	// Model names the model: "name:version", "name@alias" or "name"
	// (latest).
	Model string `json:"model"`
	// ID is the caller's request id, echoed in the response.
	ID string `json:"id,omitempty"`
	// Parameters of the request, carried as they came.
	Parameters map[string]any `json:"parameters,omitempty"`
	// Inputs are the input tensors, the batch dimension first.
	Inputs []Tensor `json:"inputs"`
	// Outputs, when not empty, are the outputs wanted; else all.
	Outputs []RequestedOutput `json:"outputs,omitempty"`
}

// Response is the result of an inference task: an Open Inference Protocol
// inference response.
type Response struct {
	// ModelName is the model's name.
	ModelName string `json:"model_name"`
	// ModelVersion is the version that ran (an alias resolved).
	ModelVersion string `json:"model_version"`
	// ID echoes the request's id.
	ID string `json:"id,omitempty"`
	// Parameters of the response.
	Parameters map[string]any `json:"parameters,omitempty"`
	// Outputs are the output tensors.
	Outputs []Tensor `json:"outputs"`
}

// ModelSource resolves a tenant's model references and serves artifacts: the
// model registry on a server, the API on a worker-only node. A tenant only
// ever sees its own models: another tenant's name or digest is NotFound.
type ModelSource interface {
	// Resolve returns the version ref names (an alias resolved).
	Resolve(ctx context.Context, tenant string, ref ModelRef) (Model, error)
	// Fetch returns the artifact's bytes; the caller checks the digest.
	Fetch(ctx context.Context, tenant, digest string) (io.ReadCloser, error)
}
