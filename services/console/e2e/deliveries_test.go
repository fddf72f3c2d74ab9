package e2e

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
)

var deadRowRE = regexp.MustCompile(`data-testid="dead-letter-row-(\d+)"`)

// testDeliveries runs after testWorkflows, whose firing posted to #sales.
func testDeliveries(t *testing.T, s *stack, b *browser) {
	testkit.Eventually(t, 30*time.Second, func() bool {
		p := b.get("/deliveries")
		return p.Code == http.StatusOK && strings.Contains(p.Body, `data-testid="delivery-status">Publié`) && strings.Contains(p.Body, acmeSales)
	}, "the audit never showed the workflow's post")
	must(t, "failed only", b.get("/deliveries?status=failed"), http.StatusOK, `data-testid="deliveries-empty"`, `<option value="failed" selected>`, `data-testid="dead-letters-empty"`)

	// Slack fails twice: the egress gives up on the post.
	s.standin.InjectFailures("chat.postMessage", 2, http.StatusServiceUnavailable)
	cmd := &slackv1.PostMessage{Envelope: harness.Envelope(consoleOrg, ""), TeamId: acme, Text: "replayed from the console",
		Target: &slackv1.Target{Kind: &slackv1.Target_ChannelId{ChannelId: acmeSales}}, Origin: &slackv1.Origin{Service: "e2e", Purpose: "dead letter"}}
	if _, err := s.bus.Publish(testkit.Context(t), topology.SlackOut(consoleOrg, acme, "post"), cmd); err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	testkit.Eventually(t, 30*time.Second, func() bool {
		rows = deadRowRE.FindAllStringSubmatch(b.get("/deliveries").Body, -1)
		return len(rows) == 1
	}, "the dead letter never showed")
	testkit.Eventually(t, 30*time.Second, func() bool {
		return strings.Contains(b.get("/deliveries?status=failed").Body, `data-testid="delivery-status">Échec (retries_exhausted)`)
	}, "the audit never showed the failure")

	// Replay, Slack being well again: the command goes back to the egress,
	// which finds it was never posted and posts it.
	seq := rows[0][1]
	a := b.post("/deliveries/dead-letters/"+seq+"/replay", url.Values{"csrf": {b.csrf("/deliveries")}})
	if a.Code != http.StatusSeeOther {
		t.Fatalf("replay: %d:\n%s", a.Code, a.Body)
	}
	must(t, "after the replay", b.get(a.Location), http.StatusOK, "Lettre morte renvoyée")
	testkit.Eventually(t, 30*time.Second, func() bool {
		msgs, _ := s.standin.WaitForMessages(testkit.Context(t), 0, slackstandin.MessageFilter{Team: acme, Channel: acmeSales})
		for _, m := range msgs {
			if m.Text == "replayed from the console" {
				return true
			}
		}
		return false
	}, "the replayed post never reached Slack")
	must(t, "the same dead letter again", b.post("/deliveries/dead-letters/"+seq+"/replay", url.Values{"csrf": {b.csrf("/deliveries")}}),
		http.StatusConflict, "already replayed")
	must(t, "a dead letter that is not there", b.post("/deliveries/dead-letters/999999/replay", url.Values{"csrf": {b.csrf("/deliveries")}}),
		http.StatusNotFound, "no dead letter 999999")

	// Another post the egress gives up on, discarded: its dead letter is
	// gone from the listing, and it is not posted.
	s.standin.InjectFailures("chat.postMessage", 2, http.StatusServiceUnavailable)
	cmd = &slackv1.PostMessage{Envelope: harness.Envelope(consoleOrg, ""), TeamId: acme, Text: "discarded from the console",
		Target: &slackv1.Target{Kind: &slackv1.Target_ChannelId{ChannelId: acmeSales}}, Origin: &slackv1.Origin{Service: "e2e", Purpose: "dead letter"}}
	if _, err := s.bus.Publish(testkit.Context(t), topology.SlackOut(consoleOrg, acme, "post"), cmd); err != nil {
		t.Fatal(err)
	}
	var discard string
	testkit.Eventually(t, 30*time.Second, func() bool {
		for _, row := range deadRowRE.FindAllStringSubmatch(b.get("/deliveries").Body, -1) {
			if row[1] != seq {
				discard = row[1]
			}
		}
		return discard != ""
	}, "the second dead letter never showed")
	a = b.post("/deliveries/dead-letters/"+discard+"/discard", url.Values{"csrf": {b.csrf("/deliveries")}})
	if a.Code != http.StatusSeeOther {
		t.Fatalf("discard: %d:\n%s", a.Code, a.Body)
	}
	after := b.get(a.Location)
	must(t, "after the discard", after, http.StatusOK, "Lettre morte supprimée")
	if strings.Contains(after.Body, `data-testid="dead-letter-row-`+discard+`"`) {
		t.Fatalf("dead letter %s still listed after its discard", discard)
	}
	must(t, "the same dead letter discarded again", b.post("/deliveries/dead-letters/"+discard+"/discard", url.Values{"csrf": {b.csrf("/deliveries")}}),
		http.StatusNotFound, "no dead letter "+discard)
	msgs, _ := s.standin.WaitForMessages(testkit.Context(t), 0, slackstandin.MessageFilter{Team: acme, Channel: acmeSales})
	for _, m := range msgs {
		if m.Text == "discarded from the console" {
			t.Fatal("the discarded command was posted")
		}
	}

	testBulkDeadLetters(t, s, b, seq)
}

// testBulkDeadLetters: the dead letters a page showed are replayed or
// discarded at once; a failure among them is named, the others done.
func testBulkDeadLetters(t *testing.T, s *stack, b *browser, replayed string) {
	s.standin.InjectFailures("chat.postMessage", 4, http.StatusServiceUnavailable)
	for _, text := range []string{"bulk one", "bulk two"} {
		cmd := &slackv1.PostMessage{Envelope: harness.Envelope(consoleOrg, ""), TeamId: acme, Text: text,
			Target: &slackv1.Target{Kind: &slackv1.Target_ChannelId{ChannelId: acmeSales}}, Origin: &slackv1.Origin{Service: "e2e", Purpose: "bulk"}}
		if _, err := s.bus.Publish(testkit.Context(t), topology.SlackOut(consoleOrg, acme, "post"), cmd); err != nil {
			t.Fatal(err)
		}
	}
	var fresh []string
	testkit.Eventually(t, 30*time.Second, func() bool {
		fresh = fresh[:0]
		for _, row := range deadRowRE.FindAllStringSubmatch(b.get("/deliveries").Body, -1) {
			if row[1] != replayed {
				fresh = append(fresh, row[1])
			}
		}
		return len(fresh) == 2
	}, "the two dead letters never showed")
	must(t, "the bulk buttons", b.get("/deliveries"), http.StatusOK, `data-testid="dead-letters-replay-all">Renvoyer toutes (3)`)

	form := url.Values{"csrf": {b.csrf("/deliveries")}, "action": {"replay"}, "seq": fresh}
	if a := b.post("/deliveries/dead-letters", form); a.Code != http.StatusSeeOther {
		t.Fatalf("bulk replay: %d:\n%s", a.Code, a.Body)
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		msgs, _ := s.standin.WaitForMessages(testkit.Context(t), 0, slackstandin.MessageFilter{Team: acme, Channel: acmeSales})
		n := 0
		for _, m := range msgs {
			if strings.HasPrefix(m.Text, "bulk ") {
				n++
			}
		}
		return n == 2
	}, "the bulk-replayed posts never reached Slack")
	must(t, "a bulk replay with one just replayed", b.post("/deliveries/dead-letters",
		url.Values{"csrf": {b.csrf("/deliveries")}, "action": {"replay"}, "seq": {replayed}}),
		http.StatusConflict, "1 sur 1 en échec", replayed+" : ")

	all := append([]string{replayed}, fresh...)
	form = url.Values{"csrf": {b.csrf("/deliveries")}, "action": {"discard"}, "seq": all}
	a := b.post("/deliveries/dead-letters", form)
	if a.Code != http.StatusSeeOther {
		t.Fatalf("bulk discard: %d:\n%s", a.Code, a.Body)
	}
	must(t, "after the bulk discard", b.get(a.Location), http.StatusOK, "Lettres mortes supprimées", `data-testid="dead-letters-empty"`)
	must(t, "an unknown action", b.post("/deliveries/dead-letters", url.Values{"csrf": {b.csrf("/deliveries")}, "action": {"x"}, "seq": all}),
		http.StatusBadRequest, "Action inconnue")
}
