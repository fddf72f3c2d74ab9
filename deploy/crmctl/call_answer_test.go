package main

import (
	"strings"
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
	if s := string(b); !strings.Contains(s, `"enabled": false`) || !strings.Contains(s, `"activeTeams": 0`) || strings.Contains(s, "changedAt") {
		t.Fatalf("answer %s", s)
	}
}
