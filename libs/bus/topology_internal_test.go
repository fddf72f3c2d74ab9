package bus

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/testkit"
)

func TestConfiguredIgnoresServerDefaults(t *testing.T) {
	t.Parallel()
	want := jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Duplicates: 15 * time.Minute, MaxAge: time.Hour}
	have := want
	have.MaxMsgs, have.MaxBytes, have.Replicas = -1, -1, 1 // filled in by the server
	if !configured(want, have) {
		t.Error("a config differing only in server defaults needs an update")
	}
	changed := want
	changed.MaxAge = 2 * time.Hour
	if configured(changed, have) {
		t.Error("a changed MaxAge was taken as configured")
	}
	changed = want
	changed.SubjectTransform = &jetstream.SubjectTransformConfig{Source: "s.>", Destination: "t.>"}
	if configured(changed, have) {
		t.Error("a new subject transform was taken as configured")
	}
	// Asking for no transform where the server has one is a change too.
	withTransform := have
	withTransform.SubjectTransform = changed.SubjectTransform
	if configured(want, withTransform) {
		t.Error("removing a subject transform was taken as configured")
	}
}

// TestEnsuredStreamIsConfigured: what the server keeps of an ensured stream
// counts as configured, so a second EnsureStream sends no update.
func TestEnsuredStreamIsConfigured(t *testing.T) {
	t.Parallel()
	nc := testkit.NATSConn(t, testkit.NATS(t))
	b, err := FromConn(nc, Config{})
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
	if !configured(cfg, s.CachedInfo().Config) {
		t.Fatalf("the server's config of an ensured stream is not taken as configured:\nwant %+v\nhave %+v", cfg, s.CachedInfo().Config)
	}
}
