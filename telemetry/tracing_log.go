package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/grey-distributed/grey/telemetry/tracing"
)

// Log attribute keys added by NewLogHandler.
const (
	LogTraceID  = "trace_id"
	LogSpanID   = "span_id"
	LogTenantID = "tenant_id"
	LogTaskID   = "task_id"
)

// NewLogHandler wraps h so that records logged with a context (the
// *Context methods and LogAttrs) carry the context's trace_id and span_id
// when it holds a valid span context, and tenant_id and task_id when it
// was made by tracing.WithTask (the worker pool does that for the handler
// of each task) and the record does not name them already. Records logged
// without a context, or with one that holds neither, are passed on as
// they are.
func NewLogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(*logHandler); ok {
		return h
	}
	return &logHandler{h: h}
}

type logHandler struct{ h slog.Handler }

func (l *logHandler) Enabled(ctx context.Context, lvl slog.Level) bool {
	return l.h.Enabled(ctx, lvl)
}

func (l *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return l.h.Handle(ctx, r)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String(LogTraceID, sc.TraceID().String()), slog.String(LogSpanID, sc.SpanID().String()))
	}
	if tenant, task, ok := tracing.TaskFromContext(ctx); ok {
		hasTenant, hasTask := false, false
		r.Attrs(func(a slog.Attr) bool {
			hasTenant = hasTenant || a.Key == LogTenantID
			hasTask = hasTask || a.Key == LogTaskID
			return !(hasTenant && hasTask)
		})
		if !hasTenant && tenant != "" {
			r.AddAttrs(slog.String(LogTenantID, tenant))
		}
		if !hasTask && task != "" {
			r.AddAttrs(slog.String(LogTaskID, task))
		}
	}
	return l.h.Handle(ctx, r)
}

func (l *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{h: l.h.WithAttrs(as)}
}

func (l *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{h: l.h.WithGroup(name)}
}
