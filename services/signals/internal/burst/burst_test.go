package burst

import (
	"testing"
	"time"
)

func TestAdd(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	to := Target{Org: "o", Team: "T1", SlackUser: "U1", Record: Record{Module: "Contacts", ID: "c1"}}
	key := func(first Entry) string { return "post:" + first.EventID }
	entry := func(id string, after time.Duration) Entry { return Entry{EventID: id, At: t0.Add(after)} }

	g, a := Add(nil, entry("e1", 0), to, DefaultWindow, key)
	if a != Post || g.PostKey != "post:e1" || len(g.Entries) != 1 || g.Shown != 1 {
		t.Fatalf("first signal: %v %+v", a, g)
	}
	g, a = Add(&g, entry("e2", 30*time.Second), to, DefaultWindow, key)
	if a != Wait || len(g.Entries) != 2 {
		t.Fatalf("second signal before the post landed: %v %+v", a, g)
	}
	if _, a = Add(&g, entry("e2", 30*time.Second), to, DefaultWindow, key); a != Duplicate {
		t.Fatalf("the same event again: %v", a)
	}
	g, stale := Located(g, "D1", "1.2")
	if !stale || g.Shown != 2 {
		t.Fatalf("located: stale %v shown %d", stale, g.Shown)
	}
	g, a = Add(&g, entry("e3", 90*time.Second), to, DefaultWindow, key)
	if a != Update || g.Shown != 3 || g.Channel != "D1" {
		t.Fatalf("third signal after the post landed: %v %+v", a, g)
	}
	n, a := Add(&g, entry("e4", DefaultWindow), to, DefaultWindow, key)
	if a != Post || n.PostKey != "post:e4" || len(n.Entries) != 1 {
		t.Fatalf("a signal at the window's end starts a new message: %v %+v", a, n)
	}
	other := to
	other.Team = "T2"
	if _, a := Add(&g, entry("e5", time.Second), other, DefaultWindow, key); a != Post {
		t.Fatalf("a signal for another team starts a new message: %v", a)
	}
	if _, stale := Located(n, "D1", "1.3"); stale {
		t.Fatal("a located single post needs no update")
	}
}

func TestAddBounded(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	to := Target{Team: "T1", SlackUser: "U1"}
	key := func(first Entry) string { return first.EventID }
	var g *Group
	posts := 0
	for i := range MaxEntries + 1 {
		next, a := Add(g, Entry{EventID: string(rune('a' + i)), At: t0}, to, time.Hour, key)
		if a == Post {
			posts++
		}
		g = &next
	}
	if posts != 2 || len(g.Entries) != 1 {
		t.Fatalf("after %d signals: %d posts, last group of %d", MaxEntries+1, posts, len(g.Entries))
	}
}
