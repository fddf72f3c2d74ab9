package slackstandin

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Seed is the stand-in's initial state: workspaces with their users,
// channels and a few existing messages.
type Seed struct {
	Workspaces []Workspace `json:"workspaces"`
}

// Workspace is a Slack team (T…) with the app installed in it.
type Workspace struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Domain     string      `json:"domain"`
	Enterprise *Enterprise `json:"enterprise,omitempty"`
	// Inactive makes every token of the workspace answer account_inactive.
	Inactive bool          `json:"inactive,omitempty"`
	Bot      Bot           `json:"bot"`
	Users    []User        `json:"users"`
	Channels []Channel     `json:"channels"`
	Messages []SeedMessage `json:"messages,omitempty"`
}

// Enterprise is the Enterprise Grid organization a workspace belongs to.
type Enterprise struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Bot is the app's bot user in a workspace.
type Bot struct {
	UserID string `json:"user_id"`
	BotID  string `json:"bot_id"`
	Name   string `json:"name"`
}

// User is a member of a workspace.
type User struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	RealName string `json:"real_name"`
	Email    string `json:"email,omitempty"`
	TZ       string `json:"tz,omitempty"`
	IsBot    bool   `json:"is_bot,omitempty"`
	IsAdmin  bool   `json:"is_admin,omitempty"`
	Deleted  bool   `json:"deleted,omitempty"`
}

// Channel is a public (C…) or private (C… or G…) channel. Members lists user
// ids; the app's bot is a member only if its user id is listed.
type Channel struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	IsPrivate  bool     `json:"is_private,omitempty"`
	IsArchived bool     `json:"is_archived,omitempty"`
	Members    []string `json:"members"`
	Topic      string   `json:"topic,omitempty"`
	Purpose    string   `json:"purpose,omitempty"`
	Creator    string   `json:"creator,omitempty"`
	Created    int64    `json:"created,omitempty"`
}

// SeedMessage is a message that exists before the test starts, e.g. one
// written by a person, which the bot may not update.
type SeedMessage struct {
	Channel  string `json:"channel"`
	User     string `json:"user"`
	TS       string `json:"ts"`
	ThreadTS string `json:"thread_ts,omitempty"`
	Text     string `json:"text"`
}

//go:embed seed.json
var defaultSeedJSON []byte

// DefaultSeed returns a fresh copy of the built-in seed: two workspaces
// (Acme Corp, and Globex inside an Enterprise Grid), six people each, and
// channels covering the cases an app meets: one the bot is in, a public one
// it is not in, private ones on both sides, and an archived one.
func DefaultSeed() *Seed {
	s, err := LoadSeed(bytes.NewReader(defaultSeedJSON))
	if err != nil {
		panic("slackstandin: built-in seed.json is invalid: " + err.Error())
	}
	return s
}

// LoadSeed reads a seed from JSON (the format of seed.json) and validates it.
func LoadSeed(r io.Reader) (*Seed, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var s Seed
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding seed: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

var (
	reTeamID    = regexp.MustCompile(`^T[A-Z0-9]+$`)
	reUserID    = regexp.MustCompile(`^[UW][A-Z0-9]+$`)
	reBotID     = regexp.MustCompile(`^B[A-Z0-9]+$`)
	reChannelID = regexp.MustCompile(`^[CG][A-Z0-9]+$`)
	reEntID     = regexp.MustCompile(`^E[A-Z0-9]+$`)
	reTS        = regexp.MustCompile(`^\d{10}\.\d{6}$`)
)

// Validate checks ids have Slack's shapes and every reference resolves.
func (s *Seed) Validate() error {
	if len(s.Workspaces) == 0 {
		return errors.New("seed has no workspace")
	}
	seen := map[string]string{} // id → what it names, across workspaces
	claim := func(id, what string) error {
		if prev, dup := seen[id]; dup {
			return fmt.Errorf("id %s used for %s and %s", id, prev, what)
		}
		seen[id] = what
		return nil
	}
	for i, ws := range s.Workspaces {
		where := fmt.Sprintf("workspaces[%d] (%s)", i, ws.ID)
		if !reTeamID.MatchString(ws.ID) {
			return fmt.Errorf("%s: team id must look like T…", where)
		}
		if ws.Name == "" || ws.Domain == "" {
			return fmt.Errorf("%s: name and domain are required", where)
		}
		if ws.Enterprise != nil && !reEntID.MatchString(ws.Enterprise.ID) {
			return fmt.Errorf("%s: enterprise id must look like E…", where)
		}
		if !reUserID.MatchString(ws.Bot.UserID) || !reBotID.MatchString(ws.Bot.BotID) || ws.Bot.Name == "" {
			return fmt.Errorf("%s: bot needs user_id U…, bot_id B… and a name", where)
		}
		if err := claim(ws.ID, where); err != nil {
			return err
		}
		if err := claim(ws.Bot.UserID, where+" bot"); err != nil {
			return err
		}
		users := map[string]bool{ws.Bot.UserID: true}
		emails := map[string]bool{}
		for _, u := range ws.Users {
			if !reUserID.MatchString(u.ID) || u.Name == "" {
				return fmt.Errorf("%s: user %q needs an id U… or W… and a name", where, u.ID)
			}
			if err := claim(u.ID, where+" user"); err != nil {
				return err
			}
			if e := strings.ToLower(u.Email); e != "" {
				if emails[e] {
					return fmt.Errorf("%s: email %s used twice", where, u.Email)
				}
				emails[e] = true
			}
			users[u.ID] = true
		}
		channels := map[string]bool{}
		for _, c := range ws.Channels {
			if !reChannelID.MatchString(c.ID) || c.Name == "" {
				return fmt.Errorf("%s: channel %q needs an id C… or G… and a name", where, c.ID)
			}
			if err := claim(c.ID, where+" channel"); err != nil {
				return err
			}
			for _, m := range c.Members {
				if !users[m] {
					return fmt.Errorf("%s: channel %s lists unknown member %s", where, c.ID, m)
				}
			}
			channels[c.ID] = true
		}
		for _, m := range ws.Messages {
			if !channels[m.Channel] || !users[m.User] || !reTS.MatchString(m.TS) {
				return fmt.Errorf("%s: message %s needs a known channel, a known user and a ts like 1700000000.000100", where, m.TS)
			}
		}
	}
	return nil
}
