package tracectx

import (
	"context"
	"log/slog"
)

// Log attribute keys added by [LogHandler].
const (
	LogKeyTraceID = "trace_id"
	LogKeySpanID  = "span_id"
)

// LogHandler wraps h so that every record logged with a context carrying a
// trace (Logger.InfoContext, Logger.Log, ...) gets trace_id and span_id
// attributes. Records without a trace pass through unchanged. Wrapping an
// already wrapped handler returns it as is, so libraries may wrap the logger
// they are given without doubling the attributes.
//
// Under Logger.WithGroup the attributes land inside the group, like any
// attribute added by the record's caller.
func LogHandler(h slog.Handler) slog.Handler {
	if lh, ok := h.(*logHandler); ok {
		return lh
	}
	return &logHandler{inner: h}
}

type logHandler struct{ inner slog.Handler }

func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if tc, ok := FromContext(ctx); ok {
		r = r.Clone() // the caller's Record may share its attribute array
		r.AddAttrs(
			slog.String(LogKeyTraceID, tc.TraceIDString()),
			slog.String(LogKeySpanID, tc.SpanIDString()),
		)
	}
	return h.inner.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{inner: h.inner.WithAttrs(attrs)}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{inner: h.inner.WithGroup(name)}
}
