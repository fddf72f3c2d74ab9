package e2e

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"
)

var versionRE = regexp.MustCompile(`name="version" value="(\d+)"`)

// checked reports whether the page's checkbox testid is ticked.
func checked(body, testid string) bool {
	return regexp.MustCompile(`data-testid="` + regexp.QuoteMeta(testid) + `" checked`).MatchString(body)
}

func testSignals(t *testing.T, s *stack, b *browser) {
	p := b.get("/signals")
	must(t, "GET /signals", p, http.StatusOK, `data-testid="signals-matrix"`, ">Appel<", "Manqué", `data-testid="signal-call-missed"`, `data-testid="signal-email-bounced"`)
	if !checked(p.Body, "signal-call-missed") || checked(p.Body, "signal-call-incoming") {
		t.Fatalf("the defaults: Appel/Manqué on, Appel/Entrant off, want as the API says:\n%s", p.Body)
	}
	version := versionRE.FindStringSubmatch(p.Body)[1]

	// Untick Manqué, tick Entrant under Appel, keep the chat's defaults.
	form := url.Values{"csrf": {b.csrf("/signals")}, "version": {version},
		"cell": {"SIGNAL_CHANNEL_CALL/incoming", "SIGNAL_CHANNEL_CHAT/started"}}
	a := b.post("/signals", form)
	if a.Code != http.StatusSeeOther {
		t.Fatalf("save: %d:\n%s", a.Code, a.Body)
	}
	p = b.get(a.Location)
	must(t, "after saving", p, http.StatusOK, "Paramètres SalesSignals enregistrés")
	for testid, want := range map[string]bool{"signal-call-missed": false, "signal-call-incoming": true, "signal-chat-started": true, "signal-chat-missed": false} {
		if checked(p.Body, testid) != want {
			t.Errorf("after saving, %s ticked = %v, want %v", testid, !want, want)
		}
	}
	// A form read before another change: refused, nothing overwritten.
	form.Set("version", versionRE.FindStringSubmatch(p.Body)[1])
	if a = b.post("/signals", form); a.Code != http.StatusSeeOther {
		t.Fatalf("save again: %d:\n%s", a.Code, a.Body)
	}
	a = b.post("/signals", form)
	must(t, "a stale save", a, http.StatusConflict, `data-testid="error"`, "Modifié entre-temps")

	a = b.post("/signals/reset", url.Values{"csrf": {b.csrf("/signals")}})
	p = b.get(a.Location)
	must(t, "after reset", p, http.StatusOK, "rétablis par défaut")
	if !checked(p.Body, "signal-call-missed") || checked(p.Body, "signal-call-incoming") {
		t.Fatalf("after reset, the defaults are not back:\n%s", p.Body)
	}

	a = b.post("/signals/team", url.Values{"csrf": {b.csrf("/signals")}, "team_id": {acme}})
	must(t, "default team", b.get(a.Location), http.StatusOK, "Équipe par défaut enregistrée", `<option value="`+acme+`" selected>`)
}
