package app_test

import (
	"context"
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/services/teams/internal/app"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// revokedSlack answers every auth.test with token_revoked.
type revokedSlack struct{ noSlack }

func (revokedSlack) AuthTest(context.Context, string) error {
	return &app.SlackError{Code: "token_revoked"}
}

// A token revoked without the app being told is found by the periodic
// check: the team needs re-authorization and stays in the org's access as
// such; a second run within the interval asks Slack nothing.
func TestCheckTokensFindsARevokedToken(t *testing.T) {
	t.Parallel()
	f := newFixtureWith(t, revokedSlack{})
	ctx := testkit.Context(t)
	if _, _, err := f.svc.CompleteInstall(ctx, installInput("org1", "T0ACME0001")); err != nil {
		t.Fatal(err)
	}
	n, err := f.svc.CheckTokens(ctx)
	if err != nil || n != 1 {
		t.Fatalf("marked %d: %v", n, err)
	}
	got, err := f.svc.GetTeam(ctx, "org1", "T0ACME0001")
	if err != nil || got.Status != registry.StatusBroken {
		t.Fatalf("team %+v: %v", got, err)
	}
	if a := f.access.get("org1"); len(a.Teams) != 1 || !a.Teams[0].NeedsReauth {
		t.Fatalf("access %+v", a)
	}
	if n, _ := f.svc.CheckTokens(ctx); n != 0 {
		t.Fatalf("a second run marked %d", n)
	}
}
