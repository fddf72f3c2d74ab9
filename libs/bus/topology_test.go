package bus_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
)

// TestEnsuredStreamIsConfigured: what the server keeps of an ensured stream
// counts as configured, so a second EnsureStream sends no update.
func TestEnsuredStreamIsConfigured(t *testing.T) {
	t.Parallel()
	nc := testkit.NATSConn(t, testkit.NATS(t))
	b, err := bus.FromConn(nc, bus.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testkit.Context(t)
	cfg := jetstream.StreamConfig{
		Name: "ENSURED", Subjects: []string{"ensured.>"}, Duplicates: 15 * time.Minute, MaxAge: time.Hour,
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		Description: "d", MaxMsgsPerSubject: 1, AllowDirect: true,
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: "ensured.*", Destination: "ensured.{{wildcard(1)}}.x"},
	}
	s, err := b.EnsureStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bus.Configured(cfg, s.CachedInfo().Config) {
		t.Fatalf("the server's config of an ensured stream is not taken as configured:\nwant %+v\nhave %+v", cfg, s.CachedInfo().Config)
	}
}
