package bus

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
