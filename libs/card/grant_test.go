package card_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/card"
)

func TestShareButtonGrant(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	key, old := []byte(strings.Repeat("k", 32)), []byte(strings.Repeat("o", 32))
	issuer, err := card.NewButtons(clock, key)
	if err != nil {
		t.Fatal(err)
	}
	g := card.Grant{Ref: card.Ref{Org: "org1", Module: "Deals", ID: "d1"}, Team: "T1", Channel: "C1", User: "U1"}
	btn, err := issuer.ShareButton(g)
	if err != nil || btn.ActionID != card.ShareActionID {
		t.Fatal(btn, err)
	}
	tampered := strings.Replace(btn.Value, btn.Value[5:9], "AAAA", 1)
	forged, _ := card.NewButtons(clock, old)
	forgedBtn, _ := forged.ShareButton(g)
	rotated, _ := card.NewButtons(clock, old, key) // a new key first, the old one still checks

	cases := []struct {
		name                string
		checker             *card.Buttons
		value               string
		team, channel, user string
		after               time.Duration
		want                error
	}{
		{"the user it was shown to", issuer, btn.Value, "T1", "C1", "U1", 0, nil},
		{"after a key rotation", rotated, btn.Value, "T1", "C1", "U1", 0, nil},
		{"just before it expires", issuer, btn.Value, "T1", "C1", "U1", card.GrantTTL, nil},
		{"expired", issuer, btn.Value, "T1", "C1", "U1", card.GrantTTL + time.Second, card.ErrGrantExpired},
		{"another user", issuer, btn.Value, "T1", "C1", "U2", 0, card.ErrNotYours},
		{"another channel", issuer, btn.Value, "T1", "C2", "U1", 0, card.ErrNotYours},
		{"another team", issuer, btn.Value, "T2", "C1", "U1", 0, card.ErrNotYours},
		{"signed with another key", issuer, forgedBtn.Value, "T1", "C1", "U1", 0, card.ErrBadRef},
		{"tampered", issuer, tampered, "T1", "C1", "U1", 0, card.ErrBadRef},
		{"an unsigned reference", issuer, `{"o":"org1","m":"Deals","i":"d1"}`, "T1", "C1", "U1", 0, card.ErrBadRef},
	}
	for _, c := range cases {
		at := now.Add(c.after)
		checker := c.checker
		if c.after != 0 {
			checker, _ = card.NewButtons(func() time.Time { return at }, key)
		}
		ref, err := checker.Open(c.value, c.team, c.channel, c.user)
		if !errors.Is(err, c.want) || (err == nil && ref != g.Ref) {
			t.Errorf("%s: %+v, %v; want %v", c.name, ref, err, c.want)
		}
	}
}
