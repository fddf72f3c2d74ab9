package main

import (
	"encoding/json"
	"testing"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

// A turned-off integration reads "enabled": false, not a missing field.
func TestAnswerJSONSaysFalse(t *testing.T) {
	t.Parallel()
	b, err := answerJSON(&teamsv1.GetIntegrationResponse{Enabled: false, ActiveTeams: 0})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if enabled, ok := got["enabled"]; !ok || enabled != false {
		t.Fatalf("answer %s: want \"enabled\": false", b)
	}
	if _, ok := got["changedAt"]; ok || got["activeTeams"] != 0.0 {
		t.Fatalf("answer %s", b)
	}
}
