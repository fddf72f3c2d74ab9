package e2e

import (
	"net/http"
	"net/url"
	"testing"
)

func testReminders(t *testing.T, s *stack, b *browser) {
	p := b.get("/reminders")
	must(t, "GET /reminders", p, http.StatusOK, `data-testid="reminders-disabled" checked`, "Désactiver les rappels via Slack", `<option value="`+acme+`"`)

	for _, c := range []struct {
		name  string
		form  url.Values
		field string
	}{
		{"no team", url.Values{"team_id": {""}}, "team_id"},
		{"bad time zone", url.Values{"team_id": {acme}, "time_zone": {"Mars/Olympus"}}, "time_zone"},
	} {
		c.form.Set("csrf", b.csrf("/reminders"))
		must(t, c.name, b.post("/reminders", c.form), http.StatusBadRequest, `data-testid="error-`+c.field+`"`, `aria-invalid="true"`)
	}

	a := b.post("/reminders", url.Values{"csrf": {b.csrf("/reminders")}, "team_id": {acme}, "time_zone": {"Europe/Paris"}})
	if a.Code != http.StatusSeeOther {
		t.Fatalf("turn on: %d:\n%s", a.Code, a.Body)
	}
	p = b.get(a.Location)
	must(t, "after turning on", p, http.StatusOK, "Préférences de rappel enregistrées", `<option value="`+acme+`" selected>`, `value="Europe/Paris"`)
	if checked(p.Body, "reminders-disabled") {
		t.Fatalf("reminders still shown off:\n%s", p.Body)
	}
	a = b.post("/reminders", url.Values{"csrf": {b.csrf("/reminders")}, "disabled": {"on"}, "team_id": {acme}})
	must(t, "after turning off", b.get(a.Location), http.StatusOK, `data-testid="reminders-disabled" checked`)
}
