package matrix

import (
	"errors"
	"testing"
)

func TestDefaults(t *testing.T) {
	t.Parallel()
	var m Matrix
	for _, tc := range []struct {
		key  Key
		want bool
	}{
		// The seed's example: "Manqué" under "Appel" is what reps want.
		{Key{Call, "missed"}, true},
		{Key{Call, "incoming"}, false},
		{Key{Call, "outgoing"}, false},
		{Key{Chat, "missed"}, true},
		{Key{Email, "received"}, true},
		{Key{Email, "opened"}, false},
		{Key{SupportTicket, "escalated"}, true},
		{Key{Website, "visit"}, false},
		{Key{Survey, "response"}, true},
		{Key{Call, "no-such-kind"}, false},
	} {
		if got := m.Enabled(tc.key); got != tc.want {
			t.Errorf("default %s = %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestCatalogCoversEveryChannel(t *testing.T) {
	t.Parallel()
	seen := map[Channel]int{}
	keys := map[Key]bool{}
	for _, d := range Catalog() {
		seen[d.Channel]++
		if keys[d.Key] {
			t.Errorf("cell %s listed twice", d.Key)
		}
		keys[d.Key] = true
		if d.Label == "" {
			t.Errorf("cell %s has no label", d.Key)
		}
	}
	for _, c := range []Channel{Call, Chat, Email, SupportTicket, Social, Website, Survey, Campaign} {
		if seen[c] == 0 {
			t.Errorf("channel %s has no signal types", c)
		}
	}
}

func TestWithAndExactly(t *testing.T) {
	t.Parallel()
	var m Matrix
	off, err := m.With(map[Key]bool{{Call, "missed"}: false, {Call, "incoming"}: true})
	if err != nil {
		t.Fatal(err)
	}
	if off.Enabled(Key{Call, "missed"}) || !off.Enabled(Key{Call, "incoming"}) {
		t.Fatalf("With did not set the cells: %v", off.Overrides())
	}
	if m.Enabled(Key{Call, "missed"}) != true {
		t.Fatal("With changed its receiver")
	}
	back, err := off.With(map[Key]bool{{Call, "missed"}: true, {Call, "incoming"}: false})
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Overrides()) != 0 {
		t.Fatalf("values equal to the defaults are kept as overrides: %v", back.Overrides())
	}
	only, err := Exactly(map[Key]bool{{Email, "opened"}: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range only.Cells() {
		if want := c.Key == (Key{Email, "opened"}); c.Enabled != want {
			t.Errorf("Exactly: %s = %v, want %v", c.Key, c.Enabled, want)
		}
	}
	for _, bad := range []Key{{Call, "voicemail"}, {0, "missed"}, {Channel(99), "x"}} {
		if _, err := m.With(map[Key]bool{bad: true}); !errors.Is(err, ErrUnknownCell) {
			t.Errorf("With(%v) = %v, want ErrUnknownCell", bad, err)
		}
		if _, err := Exactly(map[Key]bool{bad: true}); !errors.Is(err, ErrUnknownCell) {
			t.Errorf("Exactly(%v) = %v, want ErrUnknownCell", bad, err)
		}
	}
}

func TestTeamsFor(t *testing.T) {
	t.Parallel()
	active := []string{"T1", "T2", "T3"}
	for _, tc := range []struct {
		name string
		s    Settings
		want []string
	}{
		{"no choice", Settings{}, []string{"T1", "T2", "T3"}},
		{"default first", Settings{DefaultTeam: "T2"}, []string{"T2", "T1", "T3"}},
		{"owner's choice before the default", Settings{DefaultTeam: "T2", OwnerTeams: map[string]string{"u1": "T3"}}, []string{"T3", "T2", "T1"}},
		{"inactive choices are skipped", Settings{DefaultTeam: "T9", OwnerTeams: map[string]string{"u1": "T8"}}, []string{"T1", "T2", "T3"}},
	} {
		got := tc.s.TeamsFor("u1", active)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
}
