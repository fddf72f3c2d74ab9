package app

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// Targets is what the CRM's share dialog offers one sharer.
type Targets struct {
	// Teams the sharer may share to: the org's active teams they belong to.
	Teams []share.Team
	// Channels and Users of the requested team; channels only where the
	// app can post.
	Channels []share.Channel
	Users    []share.User
}

// ListTargets lists the teams a sharer may use and, when team is set, its
// channels and people, for the CRM's pick list.
func (s *Service) ListTargets(ctx context.Context, org, email, team string) (Targets, error) {
	email = strings.TrimSpace(email)
	switch {
	case org == "":
		return Targets{}, invalid("org_id is required")
	case !tokenOK(org):
		return Targets{}, invalid("org_id %q is not an org id", org)
	case email == "" || !strings.Contains(email, "@"):
		return Targets{}, invalid("sharer_email is required: the teams listed are those the sharer belongs to")
	case team != "" && !tokenOK(team):
		return Targets{}, invalid("team_id %q is not a Slack team id", team)
	}
	if !s.access.Synced() {
		return Targets{}, unavailable("the orgs' Slack access is not loaded yet; try again shortly")
	}
	a, known := s.access.Org(org)
	switch {
	case !known:
		return Targets{}, share.Errorf(share.ErrPrecondition, "org %s has no Slack integration: an admin must add a Slack team first", org)
	case !a.Enabled:
		return Targets{}, share.Errorf(share.ErrPrecondition, "the Slack integration of org %s is disabled", org)
	}
	member, err := s.teams.MemberTeams(ctx, org, email)
	if err != nil {
		return Targets{}, err
	}
	var out Targets
	for _, t := range member {
		if slices.Contains(a.Teams, t.ID) {
			out.Teams = append(out.Teams, t)
		}
	}
	if team == "" {
		return out, nil
	}
	if err := share.CheckTeam(org, a, known, team); err != nil {
		return Targets{}, err
	}
	if !slices.ContainsFunc(out.Teams, func(t share.Team) bool { return t.ID == team }) {
		return Targets{}, share.Errorf(share.ErrDenied, "%s is not a member of Slack team %s: only members of a team can share to it", email, team)
	}
	dir, err := s.teams.Directory(ctx, org, team)
	if err != nil {
		return Targets{}, err
	}
	for _, c := range dir.Channels {
		if c.CanPost {
			out.Channels = append(out.Channels, c)
		}
	}
	out.Users = dir.Users
	return out, nil
}

// Listing page sizes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// SharesQuery is ListShares' input.
type SharesQuery struct {
	Org       string
	From, To  time.Time
	SharerID  string
	PageSize  int
	PageToken string
}

// Listed is one share with its outcome.
type Listed struct {
	share.Share
	Outcome, Detail string
}

// ListShares lists an org's shares, newest first, with their outcomes as
// the delivery reports add up so far.
func (s *Service) ListShares(ctx context.Context, q SharesQuery) ([]Listed, string, error) {
	switch {
	case q.Org == "":
		return nil, "", invalid("org_id is required")
	case !tokenOK(q.Org):
		return nil, "", invalid("org_id %q is not an org id", q.Org)
	case q.PageSize < 0:
		return nil, "", invalid("page_size must not be negative")
	case !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To):
		return nil, "", invalid("from must be before to")
	}
	size := q.PageSize
	if size == 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	lq := ListQuery{Org: q.Org, From: q.From, To: q.To, SharerID: q.SharerID, Limit: size + 1}
	if q.PageToken != "" {
		at, id, ok := parseToken(q.PageToken)
		if !ok {
			return nil, "", invalid("page_token is not one this service returned")
		}
		lq.AfterAt, lq.AfterID = at, id
	}
	shares, err := s.repo.List(ctx, lq)
	if err != nil {
		return nil, "", unavailable("listing shares: %v", err)
	}
	next := ""
	if len(shares) > size {
		shares = shares[:size]
		last := shares[size-1]
		next = pageToken(last.SharedAt, last.ID)
	}
	ids := make([]string, 0, len(shares))
	for _, sh := range shares {
		if !sh.Refused {
			ids = append(ids, sh.ID)
		}
	}
	var outs []share.Outcome
	if len(ids) > 0 {
		if outs, err = s.repo.Outcomes(ctx, ids); err != nil {
			return nil, "", unavailable("reading share outcomes: %v", err)
		}
	}
	byShare := map[string][]share.Outcome{}
	for _, o := range outs {
		byShare[o.ShareID] = append(byShare[o.ShareID], o)
	}
	out := make([]Listed, len(shares))
	for i, sh := range shares {
		o, d := share.Summarize(sh, byShare[sh.ID])
		out[i] = Listed{Share: sh, Outcome: o, Detail: d}
	}
	return out, next, nil
}

func pageToken(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMilli(), 10) + "|" + id))
}

func parseToken(tok string) (time.Time, string, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", false
	}
	ms, id, ok := strings.Cut(string(raw), "|")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", false
	}
	return time.UnixMilli(n).UTC(), id, true
}
