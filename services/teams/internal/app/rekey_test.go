package app_test

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crmslack/crmslack/libs/installticket"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/services/teams/internal/app"
	"github.com/crmslack/crmslack/services/teams/internal/sealing"
)

// A key rotation completes: with a new key first in TEAMS_TOKEN_KEYS, the
// re-seal sweep moves every stored token under it, the counts per key say
// so (ListTeams' admin view and the metric), and the old key can then be
// dropped: a service holding only the new key reads every token.
func TestResealCompletesAKeyRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testkit.Context(t)
	key := func(id string) sealing.Key {
		secret := make([]byte, sealing.KeySize)
		_, _ = rand.Read(secret)
		return sealing.Key{ID: id, Secret: secret}
	}
	k1, k2 := key("k1"), key("k2")
	old, err := sealing.NewKeyring(k1)
	if err != nil {
		t.Fatal(err)
	}
	for _, team := range []string{"T0ACME0001", "T0GLBX0001"} {
		if _, _, err := serviceWith(t, f, old).CompleteInstall(ctx, installInput("org1", team)); err != nil {
			t.Fatal(err)
		}
	}
	rotated, err := sealing.NewKeyring(k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	svc := serviceWith(t, f, rotated)
	reg := prometheus.NewRegistry()
	if err := svc.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if got := use(t, svc, "org1"); got != "k2=0*,k1=2" {
		t.Fatalf("before the sweep: %s", got)
	}
	n, err := svc.Reseal(ctx)
	if err != nil || n != 2 {
		t.Fatalf("re-sealed %d: %v", n, err)
	}
	if got := use(t, svc, "org1"); got != "k2=2*,k1=0" {
		t.Fatalf("after the sweep: %s", got)
	}
	want := `
# HELP crmslack_teams_sealed_rows Stored team rows holding a token sealed under each key id, as of the last re-seal sweep; an old key of TEAMS_TOKEN_KEYS may be dropped once it counts 0.
# TYPE crmslack_teams_sealed_rows gauge
crmslack_teams_sealed_rows{key_id="k1"} 0
crmslack_teams_sealed_rows{key_id="k2"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "crmslack_teams_sealed_rows"); err != nil {
		t.Fatal(err)
	}
	if n, err := svc.Reseal(ctx); err != nil || n != 0 {
		t.Fatalf("a second sweep re-sealed %d: %v", n, err)
	}
	onlyNew, err := sealing.NewKeyring(k2)
	if err != nil {
		t.Fatal(err)
	}
	for _, team := range []string{"T0ACME0001", "T0GLBX0001"} {
		tok, err := serviceWith(t, f, onlyNew).GetBotToken(ctx, "org1", team)
		if err != nil || tok.Token != "xoxb-123-456-secretsecret" {
			t.Fatalf("%s with the old key dropped: %v", team, err)
		}
	}
}

func serviceWith(t *testing.T, f *fixture, keys *sealing.Keyring) *app.Service {
	t.Helper()
	tickets, err := installticket.NewSigner(nil, []byte(strings.Repeat("t", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return app.New(app.Config{InstallURL: "http://gw/slack/install"}, f.repo, f.pub, f.access, noSlack{}, keys, tickets, testkit.Logger(t), nil)
}

func use(t *testing.T, svc *app.Service, org string) string {
	t.Helper()
	u, err := svc.TokenKeyUse(testkit.Context(t), org)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, k := range u {
		p := k.KeyID + "=" + string(rune('0'+k.Rows))
		if k.Current {
			p += "*"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ",")
}
