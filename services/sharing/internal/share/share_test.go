package share_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

func TestCheckTeam(t *testing.T) {
	t.Parallel()
	on := share.Access{Enabled: true, Teams: []string{"T1"}}
	for _, c := range []struct {
		name  string
		a     share.Access
		known bool
		team  string
		want  error
		msg   string
	}{
		{"ok", on, true, "T1", nil, ""},
		{"never set up", share.Access{}, false, "T1", share.ErrPrecondition, "no Slack integration"},
		{"disabled", share.Access{Teams: []string{"T1"}}, true, "T1", share.ErrPrecondition, "disabled"},
		{"not the org's team", on, true, "T2", share.ErrNotFound, "not an active team of org o1"},
	} {
		err := share.CheckTeam("o1", c.a, c.known, c.team)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) || err != nil && !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.want, c.msg)
		}
	}
}

func TestTargets(t *testing.T) {
	t.Parallel()
	d := share.Directory{Team: "T1",
		Channels: []share.Channel{{ID: "C1", Name: "general", CanPost: true}, {ID: "C2", Name: "random"}},
		Users:    []share.User{{ID: "U1", Email: "Ann@X.test"}},
	}
	got, err := share.Targets(share.Channels, []string{" C1 ", "C1", ""}, d)
	if err != nil || len(got) != 1 || got[0] != "C1" {
		t.Fatalf("dedup: %v %v", got, err)
	}
	many := make([]string, share.MaxTargets+1)
	for i := range many {
		many[i] = "C" + strings.Repeat("1", i+1)
	}
	for _, c := range []struct {
		name string
		kind share.TargetKind
		ids  []string
		want error
	}{
		{"none", share.Channels, nil, share.ErrInvalid},
		{"too many", share.Channels, many, share.ErrInvalid},
		{"channel of another team", share.Channels, []string{"C1", "C9"}, share.ErrDenied},
		{"channel the app cannot post in", share.Channels, []string{"C2"}, share.ErrPrecondition},
		{"a user id as a channel", share.Channels, []string{"U1"}, share.ErrDenied},
		{"user of another team", share.Users, []string{"U9"}, share.ErrDenied},
		{"no kind", "", []string{"U1"}, share.ErrInvalid},
	} {
		if _, err := share.Targets(c.kind, c.ids, d); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if u, ok := d.UserByEmail("ann@x.TEST "); !ok || u.ID != "U1" {
		t.Errorf("UserByEmail ignores case and spaces: %v %v", u, ok)
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	a, b := share.ShareID("o1", share.KindRecord, "r1"), share.ShareID("o1", share.KindRecord, "r1")
	if a != b {
		t.Errorf("a request id must give one share id: %s %s", a, b)
	}
	for _, other := range []string{share.ShareID("o2", share.KindRecord, "r1"), share.ShareID("o1", share.KindChart, "r1"), share.ShareID("o1", share.KindRecord, "")} {
		if other == a {
			t.Errorf("share ids collide: %s", a)
		}
	}
	if share.ShareID("o1", "k", "") == share.ShareID("o1", "k", "") {
		t.Error("shares without a request id must get fresh ids")
	}
	id, ok := share.ShareOfCommand(share.CommandID(a, "C1"))
	if !ok || id != a {
		t.Errorf("ShareOfCommand: %s %v", id, ok)
	}
	for _, bad := range []string{"", "sh-", "x/y", "sh-/C1", "abc"} {
		if _, ok := share.ShareOfCommand(bad); ok {
			t.Errorf("ShareOfCommand(%q) accepted", bad)
		}
	}
	for id, ok := range map[string]bool{"": true, "crm-req-42": true, "a/b": false, "a b": false, "x\n": false, strings.Repeat("a", 201): false} {
		if share.RequestIDOK(id) != ok {
			t.Errorf("RequestIDOK(%q) = %v", id, !ok)
		}
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	sh := share.Share{ID: "sh-1", Commands: []string{"sh-1/C1", "sh-1/C2"}}
	ok := func(c string) share.Outcome { return share.Outcome{CommandID: c, Delivered: true} }
	bad := func(c, why string) share.Outcome { return share.Outcome{CommandID: c, Reason: why} }
	for _, c := range []struct {
		name         string
		s            share.Share
		outs         []share.Outcome
		want, detail string
	}{
		{"nothing yet", sh, nil, share.OutcomePending, "0 of 2 delivered so far"},
		{"one of two", sh, []share.Outcome{ok("sh-1/C1")}, share.OutcomePending, "1 of 2 delivered so far"},
		{"all", sh, []share.Outcome{ok("sh-1/C1"), ok("sh-1/C2"), ok("sh-1/C2")}, share.OutcomeDelivered, ""},
		{"a failure then a success", sh, []share.Outcome{bad("sh-1/C1", "x"), ok("sh-1/C1"), ok("sh-1/C2")}, share.OutcomeDelivered, ""},
		{"partial", sh, []share.Outcome{ok("sh-1/C1"), bad("sh-1/C2", "not_in_channel")}, share.OutcomePartial, "1 of 2 delivered; C2: not_in_channel"},
		{"failed", sh, []share.Outcome{bad("sh-1/C1", "a"), bad("sh-1/C2", "b")}, share.OutcomeFailed, "C1: a; C2: b"},
		{"another share's outcome", sh, []share.Outcome{ok("sh-2/C1")}, share.OutcomePending, "0 of 2 delivered so far"},
		{"refused", share.Share{Refused: true, Reason: "disabled"}, nil, share.OutcomeRefused, "disabled"},
	} {
		got, detail := share.Summarize(c.s, c.outs)
		if got != c.want || detail != c.detail {
			t.Errorf("%s: %q %q, want %q %q", c.name, got, detail, c.want, c.detail)
		}
	}
}
