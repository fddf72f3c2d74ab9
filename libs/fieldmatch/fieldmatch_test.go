package fieldmatch

import (
	"slices"
	"testing"
)

func TestSameLabel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"Closing Date", "closing   date", true},
		{" Deal Name ", "DEAL NAME", true},
		{"Deal Name", "DealName", false},
	} {
		if got := SameLabel(tc.a, tc.b); got != tc.want {
			t.Errorf("SameLabel(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func TestClosest(t *testing.T) {
	t.Parallel()
	labels := []string{"Deal Name", "Amount", "Closing Date", "Stage", "Account Name"}
	if got := Closest("Amout", labels, 2); !slices.Equal(got, []string{"Amount", "Stage"}) {
		t.Errorf("Closest(Amout) = %v", got)
	}
	if got := Closest("closing  dat", labels, 1); !slices.Equal(got, []string{"Closing Date"}) {
		t.Errorf("Closest(closing dat) = %v", got)
	}
	if got := Closest("x", nil, 3); len(got) != 0 {
		t.Errorf("Closest over nothing = %v", got)
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"kitten", "sitting", 3}, {"é", "e", 1}, {"abc", "", 3}} {
		if got := EditDistance([]rune(tc.a), []rune(tc.b)); got != tc.want {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
