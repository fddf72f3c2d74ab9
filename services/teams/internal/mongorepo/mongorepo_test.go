package mongorepo

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

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

// savedTeam is a repository on its own database holding one installed
// team, at version 1.
func savedTeam(t *testing.T, db string) (*Repo, registry.Team) {
	t.Helper()
	r := New(testkit.Store(t, db).DB())
	tm, _, err := registry.ApplyInstall(nil, registry.Install{
		OrgID: "org1", By: registry.User{ID: "a1", Name: "Ada"},
		Team:     registry.TeamInfo{TeamID: "T0ACME0001", Name: "Acme", BotUserID: "U0BOT1", Scopes: []string{"chat:write"}},
		BotToken: sealing.Sealed{KeyID: "k1", Data: []byte{1}},
	}, time.Now().UTC().Truncate(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SaveTeam(testkit.Context(t), &tm); err != nil {
		t.Fatal(err)
	}
	return r, tm
}

// TestSaveIsACompareAndSet: of replicas saving the same version of a row at
// once (a token refresh and a removal, say), exactly one wins and the
// others get ErrConflict; the row is the winner's. A version-checked
// ReplaceOne alone lets several win on FerretDB, which checks the filter
// and writes by _id in two steps.
func TestSaveIsACompareAndSet(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	r, _ := savedTeam(t, "teams_cas")
	const writers, rounds = 8, 10
	for round := range rounds {
		base, _, err := r.Team(ctx, "org1", "T0ACME0001")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		won := make(chan byte, writers)
		start := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := base
				mine.BotToken = sealing.Sealed{KeyID: "k1", Data: []byte{byte(w)}}
				<-start
				err := r.SaveTeam(ctx, &mine)
				switch {
				case err == nil:
					won <- byte(w)
				case !errors.Is(err, registry.ErrConflict):
					t.Errorf("writer %d: %v", w, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		close(won)
		var winners []byte
		for w := range won {
			winners = append(winners, w)
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d writers of version %d won, want 1", round, len(winners), base.Version+1)
		}
		got, _, err := r.Team(ctx, "org1", "T0ACME0001")
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != base.Version+1 || got.BotToken.Data[0] != winners[0] {
			t.Fatalf("round %d: row at version %d with writer %d's token; want version %d, writer %d's", round, got.Version, got.BotToken.Data[0], base.Version+1, winners[0])
		}
	}
}

// TestAClaimedVersionIsRead: a writer that claimed a version and died
// before writing the row leaves nothing stale behind: a load reads the
// claim, a query by field brings the row up to it, and the next write
// builds on it.
func TestAClaimedVersionIsRead(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	r, tm := savedTeam(t, "teams_claim")
	// The dead writer's claim of the next version: a new token, dirty.
	next := tm
	next.BotToken = sealing.Sealed{KeyID: "k1", Data: []byte{2}}
	d := teamTo(&next)
	d.Version, d.Dirty = tm.Version+1, true
	raw, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.versions().InsertOne(ctx, versionDoc{ID: versionID(CollTeams, d.ID, d.Version), Coll: CollTeams, Row: d.ID, Version: d.Version, Doc: raw}); err != nil {
		t.Fatal(err)
	}

	got, _, err := r.Team(ctx, "org1", "T0ACME0001")
	if err != nil || got.Version != d.Version || got.BotToken.Data[0] != 2 {
		t.Fatalf("load: version %d token %v (%v); want the claimed version %d", got.Version, got.BotToken.Data, err, d.Version)
	}
	if err := r.SaveTeam(ctx, &tm); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("a save of the superseded version: %v", err)
	}
	dirty, err := r.DirtyTeams(ctx)
	if err != nil || len(dirty) != 1 || dirty[0].Version != d.Version {
		t.Fatalf("dirty rows %v (%v); want the claimed row", dirty, err)
	}
	if err := r.SaveTeam(ctx, &got); err != nil {
		t.Fatalf("the next write: %v", err)
	}
}
