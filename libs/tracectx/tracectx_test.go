package tracectx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/crmslack/crmslack/libs/tracectx"
)

const validTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		wantErr   bool
		wantTrace string
		wantSpan  string
		wantFlags byte
	}{
		{name: "w3c example", in: validTP, wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantSpan: "00f067aa0ba902b7", wantFlags: 1},
		{name: "not sampled", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantSpan: "00f067aa0ba902b7"},
		{name: "future version with extra field", in: "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds", wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantSpan: "00f067aa0ba902b7", wantFlags: 1},
		{name: "future version exact length", in: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantSpan: "00f067aa0ba902b7", wantFlags: 9},
		{name: "empty", in: "", wantErr: true},
		{name: "too short", in: validTP[:54], wantErr: true},
		{name: "version 00 too long", in: validTP + "-00", wantErr: true},
		{name: "future version glued suffix", in: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", wantErr: true},
		{name: "version ff", in: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", wantErr: true},
		{name: "uppercase hex", in: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", wantErr: true},
		{name: "all-zero trace id", in: "00-00000000000000000000000000000000-00f067aa0ba902b7-01", wantErr: true},
		{name: "all-zero parent id", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", wantErr: true},
		{name: "wrong separator", in: "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", wantErr: true},
		{name: "non-hex flags", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", wantErr: true},
		{name: "non-hex version", in: "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tc, err := tracectx.Parse(tt.in)
			if tt.wantErr {
				if !errors.Is(err, tracectx.ErrInvalidTraceparent) {
					t.Fatalf("Parse(%q) error = %v, want ErrInvalidTraceparent", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := tc.TraceIDString(); got != tt.wantTrace {
				t.Errorf("trace id = %s, want %s", got, tt.wantTrace)
			}
			if got := tc.SpanIDString(); got != tt.wantSpan {
				t.Errorf("span id = %s, want %s", got, tt.wantSpan)
			}
			if tc.Flags != tt.wantFlags {
				t.Errorf("flags = %x, want %x", tc.Flags, tt.wantFlags)
			}
		})
	}
}

func TestNewIsValidAndRoundTrips(t *testing.T) {
	t.Parallel()
	seen := make(map[[16]byte]bool)
	for range 100 {
		tc := tracectx.New()
		if !tc.IsValid() {
			t.Fatalf("New() = %v, not valid", tc)
		}
		if tc.Flags != tracectx.FlagSampled {
			t.Errorf("flags = %x, want sampled", tc.Flags)
		}
		if seen[tc.TraceID] {
			t.Fatalf("trace id %s generated twice", tc.TraceIDString())
		}
		seen[tc.TraceID] = true
		back, err := tracectx.Parse(tc.Traceparent())
		if err != nil {
			t.Fatalf("Parse(New().Traceparent()): %v", err)
		}
		if back != tc {
			t.Fatalf("round trip = %+v, want %+v", back, tc)
		}
	}
}

func TestChildKeepsTraceNewSpan(t *testing.T) {
	t.Parallel()
	parent := tracectx.New().WithState("vendor=abc")
	child := parent.Child()
	if child.TraceID != parent.TraceID || child.Flags != parent.Flags || child.State != parent.State {
		t.Errorf("child %+v does not keep the parent's trace id, flags and state %+v", child, parent)
	}
	if child.SpanID == parent.SpanID {
		t.Error("child has the parent's span id")
	}
}

func TestWithState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"kept", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
		{"too long dropped", strings.Repeat("a", 513), ""},
		{"control character dropped", "a=b\n", ""},
		{"non-ASCII dropped", "a=é", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tracectx.New().WithState(tt.in).State; got != tt.want {
				t.Errorf("WithState(%q).State = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, ok := tracectx.FromContext(ctx); ok {
		t.Fatal("empty context has a trace")
	}
	if got := tracectx.TraceID(ctx); got != "" {
		t.Fatalf("TraceID(empty) = %q", got)
	}
	if got := tracectx.WithTrace(ctx, tracectx.TraceContext{}); got != ctx {
		t.Fatal("WithTrace with an invalid trace changed the context")
	}

	ensured := tracectx.Ensure(ctx)
	tc, ok := tracectx.FromContext(ensured)
	if !ok || !tc.IsValid() {
		t.Fatal("Ensure did not add a valid trace")
	}
	if tracectx.Ensure(ensured) != ensured {
		t.Fatal("Ensure replaced an existing trace")
	}
	if got := tracectx.TraceID(ensured); got != tc.TraceIDString() || len(got) != 32 {
		t.Fatalf("TraceID = %q, want %q", got, tc.TraceIDString())
	}
	if got := tracectx.SpanID(ensured); got != tc.SpanIDString() || len(got) != 16 {
		t.Fatalf("SpanID = %q, want %q", got, tc.SpanIDString())
	}

	span := tracectx.StartSpan(ensured)
	if tracectx.TraceID(span) != tc.TraceIDString() {
		t.Error("StartSpan changed the trace id")
	}
	if tracectx.SpanID(span) == tc.SpanIDString() {
		t.Error("StartSpan kept the span id")
	}
	if tracectx.TraceID(tracectx.StartSpan(ctx)) == "" {
		t.Error("StartSpan without a trace did not start one")
	}
}

func TestLogHandlerAddsTraceAttributes(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := tracectx.LogHandler(slog.NewJSONHandler(&buf, nil))
	if tracectx.LogHandler(h) != h {
		t.Error("wrapping twice did not return the same handler")
	}
	log := slog.New(h).With("service", "test")

	ctx := tracectx.Ensure(context.Background())
	// More than five attributes so the record's overflow array is in use,
	// which is where modifying a shared Record would go wrong.
	log.InfoContext(ctx, "with trace", "a", 1, "b", 2, "c", 3, "d", 4, "e", 5, "f", 6)
	log.InfoContext(context.Background(), "without trace")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2:\n%s", len(lines), buf.String())
	}
	var with, without map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &with); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &without); err != nil {
		t.Fatal(err)
	}
	if with[tracectx.LogKeyTraceID] != tracectx.TraceID(ctx) || with[tracectx.LogKeySpanID] != tracectx.SpanID(ctx) {
		t.Errorf("line with trace = %v, want trace_id %s span_id %s", with, tracectx.TraceID(ctx), tracectx.SpanID(ctx))
	}
	if with["service"] != "test" || with["f"] != float64(6) {
		t.Errorf("line lost its own attributes: %v", with)
	}
	if _, ok := without[tracectx.LogKeyTraceID]; ok {
		t.Errorf("line without trace has a trace_id: %v", without)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(validTP)
	f.Add("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
	f.Add("")
	f.Add(strings.Repeat("-", 60))
	f.Fuzz(func(t *testing.T, s string) {
		tc, err := tracectx.Parse(s)
		if err != nil {
			if !errors.Is(err, tracectx.ErrInvalidTraceparent) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalidTraceparent", s, err)
			}
			if tc.IsValid() {
				t.Fatalf("Parse(%q) failed but returned a valid trace", s)
			}
			return
		}
		if !tc.IsValid() {
			t.Fatalf("Parse(%q) succeeded with an invalid trace %+v", s, tc)
		}
		out := tc.Traceparent()
		if strings.HasPrefix(s, "00-") && out != s {
			t.Fatalf("version 00 round trip: Parse(%q).Traceparent() = %q", s, out)
		}
		if out[3:] != s[3:55] {
			t.Fatalf("Parse(%q).Traceparent() = %q, ids or flags changed", s, out)
		}
		again, err := tracectx.Parse(out)
		if err != nil || again != tc {
			t.Fatalf("re-parse of %q = %+v, %v; want %+v", out, again, err, tc)
		}
	})
}
