package matrix

import (
	"maps"
	"time"
)

// Settings are one org's SalesSignals settings: the matrix and where owners
// are notified. The zero value is the defaults.
type Settings struct {
	Org    string
	Matrix Matrix
	// DefaultTeam is where owners without a choice of their own are
	// notified; empty: the first of the org's teams they are found in.
	DefaultTeam string
	// OwnerTeams is each owner's chosen team, by CRM user id.
	OwnerTeams map[string]string
	// Version changes with every stored change; 0 until the first.
	Version   uint64
	UpdatedAt time.Time
	UpdatedBy Person
}

// Person is who changed the settings.
type Person struct{ ID, Name, Email string }

// Clone returns a copy that shares nothing with s.
func (s Settings) Clone() Settings {
	s.OwnerTeams = maps.Clone(s.OwnerTeams)
	s.Matrix = FromOverrides(s.Matrix.Overrides())
	return s
}

// TeamsFor returns the teams to look for an owner in, best first: their
// own choice, the org's default, then the org's other active teams in the
// order given. Only active teams are returned.
func (s Settings) TeamsFor(ownerID string, active []string) []string {
	var out []string
	add := func(t string) {
		if t == "" {
			return
		}
		for _, a := range active {
			if a == t {
				for _, o := range out {
					if o == t {
						return
					}
				}
				out = append(out, t)
				return
			}
		}
	}
	if ownerID != "" {
		add(s.OwnerTeams[ownerID])
	}
	add(s.DefaultTeam)
	for _, t := range active {
		add(t)
	}
	return out
}
