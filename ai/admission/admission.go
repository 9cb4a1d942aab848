// Package admission checks inference tasks at submit and prepares them for
// routing. For a task of kind ai.Kind it resolves the payload's model for
// the task's tenant through an ai.ModelSource (a model the tenant does not
// have, another tenant's included, is NotFound), applies the per-tenant
// allowed models (PermissionDenied), and stamps the task with
//
//   - the constraint label grey.ai/<framework>=true, so that only workers
//     whose runtimes serve the model's framework lease it (the scheduler's
//     ordinary label matching), and
//   - the header grey.ai/model-digest with the resolved digest, which the
//     scheduler uses to prefer workers that have the model warm. Users
//     cannot set that header themselves (task.ReservedHeaderPrefix).
//
// The engine calls Checker.Check through its SubmitHooks seam:
//
//	engine.Config{SubmitHooks: map[string]engine.SubmitHook{ai.Kind: admission.New(models, allowed).Check}}
//
// A payload given by payload_ref is checked the same way: the engine reads
// the object at submit (for its size and digest) and hands its bytes to
// Check as sp.Payload; the task keeps its reference. Such an object may be
// in the binary form (ai.IsBinaryBody): Check then decodes it whole, so a
// header length past the object, tensor byte counts that do not match the
// shapes and datatypes, or bytes left over are refused at submit (400).
package admission

import (
	"context"
	"errors"
	"strings"

	"github.com/grey-distributed/grey/ai"
	"github.com/grey-distributed/grey/greyerr"
	"github.com/grey-distributed/grey/task"
)

// AllowedFunc says whether tenant may run model name: nil or an error coded
// PermissionDenied naming the setting (ai.tenant_models).
type AllowedFunc func(tenant, name string) error

// Checker is the submit hook of the inference kind.
type Checker struct {
	source  ai.ModelSource
	allowed AllowedFunc
}

// New returns a Checker resolving models through source; allowed, when not
// nil, limits each tenant's models.
func New(source ai.ModelSource, allowed AllowedFunc) *Checker {
	return &Checker{source: source, allowed: allowed}
}

// TenantModels is an AllowedFunc over the ai.tenant_models setting: a
// tenant listed there may run only the models named for it; an unlisted
// tenant may run all its own models.
func TenantModels(m map[string][]string) AllowedFunc {
	if len(m) == 0 {
		return nil
	}
	return func(tenant, name string) error {
		names, ok := m[tenant]
		if !ok {
			return nil
		}
		for _, n := range names {
			if n == name {
				return nil
			}
		}
		return greyerr.New(greyerr.PermissionDenied, "model %q is not among the models tenant %s may use (ai.tenant_models)", name, tenant)
	}
}

// Check implements the engine's SubmitHook for kind ai.Kind: it resolves
// the model and stamps the framework constraint and the model-digest
// header on sp (copying the maps it changes).
func (c *Checker) Check(ctx context.Context, tenant string, sp *task.Spec) error {
	if sp.Kind != ai.Kind || (sp.PayloadRef != "" && len(sp.Payload) == 0) {
		return nil // a reference whose bytes the caller did not read
	}
	// The payload is decoded and checked whole, once, here (the server
	// runs no other payload check for this kind): a binary body (only ever
	// by payload_ref) for its header length, each tensor's byte count
	// against its shape and datatype and the bytes adding up; a JSON one
	// as the executor will read it. The lease carries the bytes as they
	// are.
	_, ref, err := ai.DecodePayload(sp.Payload)
	if err != nil {
		var ge *greyerr.Error
		if !errors.As(err, &ge) {
			return greyerr.Invalid("payload", "an inference payload is an object with model and inputs: %v", err)
		}
		if ge.Field == "model" {
			return greyerr.Invalid("payload.model", "%s (name, name:version or name@alias)", ge.Message)
		}
		return payloadField(err)
	}
	if c.allowed != nil {
		if err := c.allowed(tenant, ref.Name); err != nil {
			return err
		}
	}
	m, err := c.source.Resolve(ctx, tenant, ref)
	if err != nil {
		if greyerr.Is(err, greyerr.NotFound) {
			return greyerr.New(greyerr.NotFound, "model %s not found", ref)
		}
		var ge *greyerr.Error
		if errors.As(err, &ge) {
			return err
		}
		return greyerr.Wrap(greyerr.Unavailable, err, "resolve model %s", ref)
	}
	if !m.Framework.Valid() {
		return greyerr.New(greyerr.Internal, "model %s has framework %q", ref, m.Framework)
	}
	want := ai.FrameworkLabel(m.Framework)
	var labels map[string]string
	if sp.Constraints != nil {
		labels = sp.Constraints.Labels
	}
	for k, v := range labels {
		if strings.HasPrefix(k, ai.FrameworkLabelPrefix) && k != want && v == "true" {
			return greyerr.Invalid("constraints.labels", "model %s is a %s model, but the task asks for a worker labelled %s=true", ref, m.Framework, k)
		}
	}
	cons := task.Constraints{}
	if sp.Constraints != nil {
		cons = *sp.Constraints
	}
	nl := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		nl[k] = v
	}
	nl[want] = "true"
	cons.Labels = nl
	sp.Constraints = &cons
	h := make(map[string]string, len(sp.Headers)+1)
	for k, v := range sp.Headers {
		h[k] = v
	}
	h[ai.ModelDigestHeader] = m.Digest
	sp.Headers = h
	return nil
}

// payloadField names the payload in a decoding error's field ("inputs[0]"
// becomes "payload.inputs[0]").
func payloadField(err error) error {
	var ge *greyerr.Error
	if !errors.As(err, &ge) {
		return greyerr.Invalid("payload", "%v", err)
	}
	c := *ge
	switch {
	case c.Field == "":
		c.Field = "payload"
	case c.Field != "payload" && !strings.HasPrefix(c.Field, "payload."):
		c.Field = "payload." + c.Field
	}
	return &c
}
