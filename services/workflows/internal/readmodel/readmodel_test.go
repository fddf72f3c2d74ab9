package readmodel

import (
	"testing"
	"time"

	"github.com/crmslack/crmslack/services/workflows/internal/action"
)

func act(id, rule string, rev uint64, created int) *action.Action {
	return &action.Action{ID: id, Org: "o1", Spec: action.Spec{RuleID: rule}, Revision: rev, CreatedAt: time.Unix(int64(created), 0)}
}

func TestRevisionsOnlyMoveForward(t *testing.T) {
	t.Parallel()
	m := New()
	m.Put(act("a2", "r1", 2, 2))
	m.Put(act("a1", "r1", 1, 1))
	if got := m.Rule("o1", "r1"); len(got) != 2 || got[0].ID != "a1" {
		t.Fatalf("rule r1 in creation order: %v", got)
	}
	m.Put(act("a1", "r2", 5, 1)) // moved rule at a newer revision
	m.Put(act("a1", "r1", 3, 1)) // a late, older update: ignored
	if got := m.Rule("o1", "r1"); len(got) != 1 || got[0].ID != "a2" {
		t.Errorf("r1 after the move: %v", got)
	}
	if got := m.Rule("o1", "r2"); len(got) != 1 || got[0].Revision != 5 {
		t.Errorf("r2 after the move: %v", got)
	}
	m.Delete("o1", "a1", 5)
	m.Put(act("a1", "r2", 5, 1)) // the watch brings back the revision deleted: ignored
	if _, ok := m.Action("o1", "a1"); ok {
		t.Error("a deleted action came back")
	}
	m.Put(act("a1", "r2", 6, 1)) // recreated later: kept
	if _, ok := m.Action("o1", "a1"); !ok {
		t.Error("a newer revision after a delete was dropped")
	}
	if got := m.Org("o1"); len(got) != 2 || got[0].ID != "a2" {
		t.Errorf("Org sorted by rule: %v", got)
	}
	if m.Format("nobody").Locale() != "en-US" {
		t.Error("the default format is not en-US")
	}
}
