package mongorepo

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmslack/crmslack/libs/testkit"

	"github.com/crmslack/crmslack/services/teams/internal/registry"
	"github.com/crmslack/crmslack/services/teams/internal/sealing"
)

func TestTeamRoundTripAndConflicts(t *testing.T) {
	t.Parallel()
	st := testkit.Store(t, "teams_repo")
	ctx := testkit.Context(t)
	if err := st.EnsureIndexes(ctx, Indexes()); err != nil {
		t.Fatal(err)
	}
	r := New(st.DB())
	now := time.Now().UTC().Truncate(time.Millisecond)
	tm, _, err := registry.ApplyInstall(nil, registry.Install{
		OrgID: "org1", By: registry.User{ID: "a1", Name: "Ada"},
		Team:           registry.TeamInfo{TeamID: "T0ACME0001", Name: "Acme", Domain: "acme", BotUserID: "U0BOT1", Scopes: []string{"chat:write"}},
		BotToken:       sealing.Sealed{KeyID: "k1", Data: []byte{1, 2, 3}},
		RefreshToken:   sealing.Sealed{KeyID: "k1", Data: []byte{4, 5}},
		TokenExpiresAt: now.Add(12 * time.Hour),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SaveTeam(ctx, &tm); err != nil {
		t.Fatal(err)
	}
	got, found, err := r.Team(ctx, "org1", "T0ACME0001")
	if err != nil || !found {
		t.Fatalf("%v %v", found, err)
	}
	if diff := cmp.Diff(tm, got); diff != "" {
		t.Fatalf("round trip (-saved +loaded):\n%s", diff)
	}
	stale := got
	got.Pending = nil
	if err := r.SaveTeam(ctx, &got); err != nil {
		t.Fatal(err)
	}
	if err := r.SaveTeam(ctx, &stale); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("a stale version was saved: %v", err)
	}
	dup := tm
	dup.Version = 0
	if err := r.SaveTeam(ctx, &dup); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("a second insert of one row: %v", err)
	}
	if _, found, _ := r.Team(ctx, "org1", "T0NOPE0001"); found {
		t.Fatal("found a team never stored")
	}
	rot, err := r.RotatingTeams(ctx)
	if err != nil || len(rot) != 1 {
		t.Fatalf("rotating: %v %v", rot, err)
	}
	ids, err := r.OrgIDs(ctx)
	if err != nil || len(ids) != 1 || ids[0] != "org1" {
		t.Fatalf("org ids %v %v", ids, err)
	}
}
