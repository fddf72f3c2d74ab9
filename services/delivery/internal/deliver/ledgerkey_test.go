package deliver

import (
	"strings"
	"testing"
)

// TestLedgerKeyIsStable: ledger keys are stored (the ledger, the markers in
// posted messages' metadata), so their spelling never changes. The values
// are those of the first build's formula, "k" + hex(sha256(len(org) ":" org
// key)[:20]).
func TestLedgerKeyIsStable(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ org, key, want string }{
		{"org-1", "workflow:rule-7:rec-9", "k296b45b6aea5c0c99f1c202b1e5e0250e82d3f85"},
		{"", "", "kba768b331fd86cec803be04e56ab2b3d4c0e98ef"},
		{"o", strings.Repeat("x", 400), "k94d7db3f6682dfeb31212447516ff7ff4716d9d9"},
	} {
		if got := LedgerKey(c.org, c.key); got != c.want {
			t.Errorf("LedgerKey(%q, %.20q…) = %s, want %s", c.org, c.key, got, c.want)
		}
	}
	if LedgerKey("ab", "c") == LedgerKey("a", "bc") {
		t.Error("two (org, key) pairs spell one key")
	}
}
