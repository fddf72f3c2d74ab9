// Package tracectx carries a W3C Trace Context (https://www.w3.org/TR/trace-context/)
// in a context.Context, so one trace id follows a piece of work across HTTP,
// gRPC and NATS and appears on every log line ([LogHandler]).
//
// It deliberately does only propagation: ids are generated with crypto/rand,
// parsed and rendered as a traceparent header, and a child span id is derived
// for each hop. Spans are not timed or exported; if OpenTelemetry is adopted
// later its propagator reads and writes the same header.
package tracectx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrInvalidTraceparent is wrapped by every error [Parse] returns.
var ErrInvalidTraceparent = errors.New("tracectx: invalid traceparent")

// FlagSampled is the W3C "sampled" trace flag. [New] sets it: nothing is
// sampled away here, and a downstream tracer may still decide otherwise.
const FlagSampled byte = 0x01

// maxTracestateLen is the W3C limit a vendor must propagate (512 chars).
const maxTracestateLen = 512

// TraceContext is one position in a trace: the trace id shared by all hops,
// the id of the current span, the trace flags, and the opaque vendor
// tracestate, passed on unchanged. The zero value is not valid; see [New] and
// [Parse].
type TraceContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
	// State is the raw tracestate header, propagated as is. Empty when absent.
	State string
}

// New starts a new trace: random trace and span ids, sampled flag set.
func New() TraceContext {
	tc := TraceContext{Flags: FlagSampled}
	for isZero(tc.TraceID[:]) {
		_, _ = rand.Read(tc.TraceID[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	}
	tc.SpanID = newSpanID()
	return tc
}

func newSpanID() [8]byte {
	var id [8]byte
	for isZero(id[:]) {
		_, _ = rand.Read(id[:])
	}
	return id
}

// Child returns a new span in the same trace: same trace id, flags and
// state, and a fresh span id. The receiver's span becomes the parent (a
// downstream hop sees it as its parent-id).
func (tc TraceContext) Child() TraceContext {
	tc.SpanID = newSpanID()
	return tc
}

// IsValid reports whether both ids are non-zero, as W3C requires.
func (tc TraceContext) IsValid() bool {
	return !isZero(tc.TraceID[:]) && !isZero(tc.SpanID[:])
}

// TraceIDString is the trace id as 32 lowercase hex digits.
func (tc TraceContext) TraceIDString() string { return hex.EncodeToString(tc.TraceID[:]) }

// SpanIDString is the span id as 16 lowercase hex digits.
func (tc TraceContext) SpanIDString() string { return hex.EncodeToString(tc.SpanID[:]) }

// Traceparent renders the traceparent header, version 00:
// "00-<trace id>-<span id>-<flags>".
func (tc TraceContext) Traceparent() string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], tc.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], tc.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{tc.Flags})
	return string(b[:])
}

// String is the traceparent header.
func (tc TraceContext) String() string { return tc.Traceparent() }

// WithState returns tc with the given tracestate header. A value W3C says
// must not be propagated (longer than 512 characters, or with characters
// outside printable ASCII) is dropped rather than passed on.
func (tc TraceContext) WithState(tracestate string) TraceContext {
	tc.State = ""
	if len(tracestate) > maxTracestateLen {
		return tc
	}
	for i := 0; i < len(tracestate); i++ {
		if c := tracestate[i]; c < 0x20 || c > 0x7e {
			if c != '\t' {
				return tc
			}
		}
	}
	tc.State = tracestate
	return tc
}

// Parse parses a traceparent header. It follows the W3C rules: lowercase hex
// only, version ff and all-zero ids refused, version 00 exactly 55
// characters; a higher version is parsed as 00 when its first 55 characters
// have the 00 layout and are followed by nothing or '-' (forward
// compatibility). The result has no State; see [TraceContext.WithState].
func Parse(traceparent string) (TraceContext, error) {
	tc, err := parse(traceparent)
	if err != nil {
		return TraceContext{}, err
	}
	return tc, nil
}

func parse(s string) (TraceContext, error) {
	var tc TraceContext
	if len(s) < 55 {
		return tc, fmt.Errorf("%w: %d characters, want 55", ErrInvalidTraceparent, len(s))
	}
	var version [1]byte
	if err := decodeLowerHex(version[:], s[0:2]); err != nil {
		return tc, fmt.Errorf("%w: version: %w", ErrInvalidTraceparent, err)
	}
	switch {
	case version[0] == 0xff:
		return tc, fmt.Errorf("%w: version ff is forbidden", ErrInvalidTraceparent)
	case version[0] == 0x00 && len(s) != 55:
		return tc, fmt.Errorf("%w: version 00 with %d characters, want 55", ErrInvalidTraceparent, len(s))
	case len(s) > 55 && s[55] != '-':
		return tc, fmt.Errorf("%w: unexpected character after flags", ErrInvalidTraceparent)
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return tc, fmt.Errorf("%w: fields must be separated by '-'", ErrInvalidTraceparent)
	}
	if err := decodeLowerHex(tc.TraceID[:], s[3:35]); err != nil {
		return tc, fmt.Errorf("%w: trace id: %w", ErrInvalidTraceparent, err)
	}
	if err := decodeLowerHex(tc.SpanID[:], s[36:52]); err != nil {
		return tc, fmt.Errorf("%w: parent id: %w", ErrInvalidTraceparent, err)
	}
	var flags [1]byte
	if err := decodeLowerHex(flags[:], s[53:55]); err != nil {
		return tc, fmt.Errorf("%w: flags: %w", ErrInvalidTraceparent, err)
	}
	tc.Flags = flags[0]
	if isZero(tc.TraceID[:]) {
		return tc, fmt.Errorf("%w: all-zero trace id", ErrInvalidTraceparent)
	}
	if isZero(tc.SpanID[:]) {
		return tc, fmt.Errorf("%w: all-zero parent id", ErrInvalidTraceparent)
	}
	return tc, nil
}

var errNotLowerHex = errors.New("not lowercase hex")

// decodeLowerHex decodes exactly len(dst)*2 lowercase hex digits; W3C
// forbids uppercase, which encoding/hex would accept.
func decodeLowerHex(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return errNotLowerHex
	}
	for i := range dst {
		hi, ok1 := fromLowerHex(s[2*i])
		lo, ok2 := fromLowerHex(s[2*i+1])
		if !ok1 || !ok2 {
			return errNotLowerHex
		}
		dst[i] = hi<<4 | lo
	}
	return nil
}

func fromLowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

type ctxKey struct{}

// WithTrace returns a copy of ctx carrying tc. An invalid tc is ignored
// (ctx is returned unchanged), so a zero value never masks a real trace.
func WithTrace(ctx context.Context, tc TraceContext) context.Context {
	if !tc.IsValid() {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, tc)
}

// FromContext returns the trace context in ctx, if any.
func FromContext(ctx context.Context) (TraceContext, bool) {
	tc, ok := ctx.Value(ctxKey{}).(TraceContext)
	return tc, ok
}

// TraceID returns ctx's trace id as 32 hex digits, or "" when ctx has none.
func TraceID(ctx context.Context) string {
	if tc, ok := FromContext(ctx); ok {
		return tc.TraceIDString()
	}
	return ""
}

// SpanID returns ctx's span id as 16 hex digits, or "" when ctx has none.
func SpanID(ctx context.Context) string {
	if tc, ok := FromContext(ctx); ok {
		return tc.SpanIDString()
	}
	return ""
}

// Ensure returns ctx unchanged when it carries a trace, else ctx with a new
// one. Entry points (an HTTP handler, a scheduler tick) call it so that
// everything downstream logs a trace id.
func Ensure(ctx context.Context) context.Context {
	if _, ok := FromContext(ctx); ok {
		return ctx
	}
	return WithTrace(ctx, New())
}

// StartSpan returns ctx with a child span of its trace (same trace id, new
// span id), or with a new trace when ctx has none. Call it when work crosses
// a hop, e.g. when a consumer starts handling a message.
func StartSpan(ctx context.Context) context.Context {
	if tc, ok := FromContext(ctx); ok {
		return WithTrace(ctx, tc.Child())
	}
	return WithTrace(ctx, New())
}
