package action

import (
	"testing"
	"time"
)

func TestMessageIDReadsBack(t *testing.T) {
	t.Parallel()
	a := NewID()
	if !IDOK(a) {
		t.Fatalf("NewID %q is not an id", a)
	}
	id := MessageID("trigger-1", a, "C0ACMESALE")
	if id != MessageID("trigger-1", a, "C0ACMESALE") {
		t.Error("the same trigger, action and target give another id")
	}
	for _, other := range []string{MessageID("trigger-2", a, "C0ACMESALE"), MessageID("trigger-1", a, OwnerTarget), MessageID("trigger-1", NewID(), "C0ACMESALE")} {
		if other == id {
			t.Errorf("%q collides", other)
		}
	}
	gotA, gotT, ok := ParseMessageID(id)
	if !ok || gotA != a || gotT != "C0ACMESALE" {
		t.Errorf("ParseMessageID(%q) = %q %q %v", id, gotA, gotT, ok)
	}
	for _, bad := range []string{"", "share:x", "wf:wfa_x:C1:" + id[len(id)-32:], "wf:" + a + "::" + id[len(id)-32:], "wf:" + a + ":C1:short"} {
		if _, _, ok := ParseMessageID(bad); ok {
			t.Errorf("ParseMessageID(%q) accepted", bad)
		}
	}
}

func TestFold(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	entries := []Entry{
		{ID: "m1", Kind: Sent, ActionID: "a", TriggerEventID: "t1", MessageID: "m1", Target: "C1", At: at(0)},
		{ID: "m2", Kind: Sent, ActionID: "a", TriggerEventID: "t1", MessageID: "m2", Target: "U1", At: at(0)},
		{ID: "o1", Kind: Posted, MessageID: "m1", Permalink: "https://x/p1", At: at(1)},
		{ID: "o2", Kind: Failed, MessageID: "m2", Reason: "user_not_found", At: at(1)},
		{ID: "m3", Kind: Sent, ActionID: "a", TriggerEventID: "t2", MessageID: "m3", Target: "C1", At: at(5)},
		{ID: "s", Kind: Skipped, ActionID: "a", TriggerEventID: "t3", Reason: "disabled", At: at(9)},
		{ID: "o3", Kind: Posted, MessageID: "m-of-another-page", At: at(9)},
	}
	xs := Fold(entries, 10)
	if len(xs) != 3 {
		t.Fatalf("%d executions: %+v", len(xs), xs)
	}
	if xs[0].TriggerEventID != "t3" || xs[0].Outcome != Skipped || xs[0].Reason != "disabled" {
		t.Errorf("newest: %+v", xs[0])
	}
	if xs[1].TriggerEventID != "t2" || xs[1].Outcome != Sent {
		t.Errorf("a message without an outcome yet: %+v", xs[1])
	}
	if x := xs[2]; x.Outcome != Failed || x.Messages[0].Permalink != "https://x/p1" || x.Messages[1].Reason != "user_not_found" {
		t.Errorf("one posted, one failed: %+v", x)
	}
	if got := Fold(entries, 1); len(got) != 1 || got[0].TriggerEventID != "t3" {
		t.Errorf("limit 1: %+v", got)
	}
}
