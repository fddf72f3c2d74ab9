package testkit

import "testing"

// errTB records Errorf; anything else falls through to the real test.
type errTB struct {
	testing.TB
	failed bool
}

func (e *errTB) Errorf(string, ...any) { e.failed = true }

func TestLayerRefuses(t *testing.T) {
	t.Parallel()
	l := Layer{Plain: true, Allow: []string{"example.com/svc/internal/sealing"}, Forbid: []string{"strings"}}
	cases := []struct {
		path    string
		refused bool
	}{
		{"fmt", false},
		{"strings", true},
		{"github.com/crmslack/crmslack/libs/fault", false},
		{"example.com/svc/internal/sealing", false},
		{"go.mongodb.org/mongo-driver/v2/mongo", true},
	}
	for _, c := range cases {
		if got := l.refuses(c.path) != ""; got != c.refused {
			t.Errorf("refuses(%s) = %t, want %t", c.path, got, c.refused)
		}
	}
}

func TestCheckLayersOnThisPackage(t *testing.T) {
	t.Parallel()
	// testkit itself is I/O through and through: a Plain rule must catch it.
	ft := &errTB{TB: t}
	CheckLayers(ft, Layer{Dir: ".", Plain: true})
	if !ft.failed {
		t.Fatal("a plain rule on testkit passed")
	}
	CheckLayers(t, Layer{Dir: ".", Forbid: []string{"go.mongodb.org/mongo-driver/v2/mongo/"}})
}
