package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestScheduleAnActivityFromJSON: an activity written as JSON goes on the
// subject the reminders service consumes.
func TestScheduleAnActivityFromJSON(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"publish", "-dry-run", "testdata/activity.json"}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"crm.v1.acme-crm.activity.scheduled\tactivity-ev-1-v1", "1 events valid"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
