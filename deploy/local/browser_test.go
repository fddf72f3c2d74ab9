package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/crmslack/crmslack/libs/card"
)

// chromiumPath is Debian's chromium, which make packages installs.
const chromiumPath = "/usr/bin/chromium"

// browser is a headless Chromium tab that writes a screenshot per step.
type browser struct {
	t    *testing.T
	ctx  context.Context
	dir  string
	step int
}

// newBrowser starts Chromium for the test. make test installs it (make
// packages); a missing browser is a failure, not a skip that would pass
// unseen.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := firstSet(os.Getenv("CHROMIUM"), chromiumPath)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no Chromium at %s: make packages installs Debian's chromium (or set CHROMIUM)", path)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium %s: %v", path, err)
	}
	return &browser{t: t, ctx: ctx, dir: screenshotDir(t)}
}

// screenshotDir is the test's artifact folder with -artifacts, else
// testdata/out/<test>, kept after the run; the log says where.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("testdata", "out", t.Name())
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		dir = t.ArtifactDir()
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	t.Logf("screenshots in %s", abs)
	return dir
}

// do runs a step's actions within limit, then checks the page is neither
// blank nor an error page and saves its screenshot.
func (b *browser) do(name string, limit time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, limit)
	defer cancel()
	b.step++
	shot := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.step, name))
	err := chromedp.Do(ctx, actions...)
	sctx, scancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer scancel()
	text, _ := chromedp.Run(sctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	png, _ := chromedp.Run(sctx, chromedp.FullScreenshot(100)) // 100: PNG
	if len(png) > 0 {
		if werr := os.WriteFile(shot, png, 0o644); werr != nil {
			b.t.Errorf("screenshot %s: %v", shot, werr)
		}
	}
	if err != nil {
		b.t.Fatalf("step %s: %v\npage text:\n%s", name, err, truncateText(text, 2000))
	}
	if strings.TrimSpace(text) == "" {
		b.t.Fatalf("step %s: the page is blank (%s)", name, shot)
	}
	for _, bad := range []string{"something is wrong", "404 page not found", "Internal Server Error"} {
		if strings.Contains(text, bad) {
			b.t.Fatalf("step %s: an error page (%q):\n%s", name, bad, truncateText(text, 2000))
		}
	}
}

func truncateText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// until keeps running try (an action that may fail, e.g. a command whose
// answer is not there yet) until check holds or the deadline passes.
func until(limit, each time.Duration, try chromedp.Action[chromedp.Void], check string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		deadline := time.Now().Add(limit)
		for {
			if _, err := try(ctx, tg); err != nil {
				return err
			}
			_, err := poll(check, each)(ctx, tg)
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("after %s, still not true: %s (last: %v)", limit, check, err)
			}
		}
	})
}

// waitText waits until the page, whichever it is after redirects, shows
// text; unlike a poll it survives the navigations a click starts.
func waitText(text string, limit time.Duration) chromedp.Action[chromedp.Void] {
	return waitJS(fmt.Sprintf(`!!document.body && document.body.innerText.includes(%q)`, text), limit)
}

// waitJS waits until cond is true on the page, across navigations, and the
// page has loaded (an action right after must not meet a document being
// replaced).
func waitJS(cond string, limit time.Duration) chromedp.Action[chromedp.Void] {
	cond = `document.readyState === "complete" && (` + cond + `)`
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		deadline := time.Now().Add(limit)
		for {
			ok, err := chromedp.Evaluate[bool](cond)(ctx, tg)
			if err == nil && ok {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("after %s, still not true: %s (last error: %v)", limit, cond, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// poll waits for a JavaScript condition, for at most limit.
func poll(cond string, limit time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(limit))
}

// css is a CSS selector (a plain string would be a DOM search).
type css = chromedp.CSS

// seen is a JavaScript test that a message in the list contains text;
// ephemeral says which kind ("true", "false" or "" for either).
func seen(text, ephemeral string) string {
	sel := "article[data-testid=message]"
	if ephemeral != "" {
		sel += "[data-ephemeral=" + ephemeral + "]"
	}
	return fmt.Sprintf(`[...document.querySelectorAll(%q)].some(a => a.innerText.includes(%q))`, sel, text)
}

// TestBrowserSandbox drives the product through a real browser: sign in to
// the console and install the Acme workspace through its "Add to Slack"
// and OAuth, /zcrm in the sandbox pane and its
// ephemeral answer, Share and the card in the channel, a workflow action
// fired from the CRM panel, a missed call under Appel/Manqué reaching the
// owner's DM, and an activity's reminder. A screenshot of each step is
// written (see the log for the folder).
//
// The workflow action, the SalesSignals matrix and Bob's reminder
// preference are saved in the console's pages.
func TestBrowserSandbox(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	environ, ops := testEnviron(t)
	sandboxAddr := envValue(environ, "SANDBOX_ADDR")
	// The panel's reminder falls two seconds ahead instead of a minute.
	environ = append(environ, "SANDBOX_REMINDER_LEAD=2s",
		"CONSOLE_PUBLIC_URL=http://"+envValue(environ, "CONSOLE_ADDR"))
	var out syncBuffer
	ep, stop := startRunner(t, environ, ops, &out)
	defer stop()
	if ep.Sandbox != "http://"+sandboxAddr || !strings.Contains(out.String(), "sandbox    http://"+sandboxAddr) {
		t.Fatalf("the start-up lines do not give the sandbox's URL %s:\n%s", sandboxAddr, out.String())
	}
	const team, sales, bob = "T0ACME0001", "C0ACMESALE", "U0ACME0BOB"

	// 1. Install: the admin signs in to the console (its development
	// sign-in); "Add to Slack" goes through the gateway, the stand-in's
	// authorize page, and back to the gateway's "Slack is connected"; the
	// console's Teams page then lists the team.
	console := "http://" + envValue(environ, "CONSOLE_ADDR")
	b.do("console-sign-in", 30*time.Second,
		chromedp.Navigate(console+"/login"),
		chromedp.SetValue(css(`[data-testid=dev-login-email]`), "alice@acme.example"),
		chromedp.Click(css(`[data-testid=dev-login-submit]`)),
		waitText("alice@acme.example", 20*time.Second))
	b.do("install-oauth", 60*time.Second,
		chromedp.Navigate(console+"/teams"),
		chromedp.WaitVisible(css(`[data-testid=install-submit]`)),
		chromedp.SetValue(css(`[data-testid=install-team-hint]`), team),
		chromedp.Click(css(`[data-testid=install-submit]`)),
		waitText("Slack is connected", 40*time.Second))
	b.do("console-teams", 30*time.Second,
		chromedp.Navigate(console+"/teams"),
		poll(`!!document.querySelector('[data-testid="team-row-`+team+`"]')`, 20*time.Second))

	// 2. /zcrm in #sales as Bob: the ephemeral answer with a Share button.
	page := ep.Sandbox + "/w/" + team + "?as=" + bob + "&c=" + sales
	share := fmt.Sprintf(`article[data-ephemeral=true] button[data-action-id=%q]`, card.ShareActionID)
	b.do("zcrm-ephemeral", 60*time.Second,
		chromedp.Navigate(page),
		chromedp.WaitVisible(css(`[data-testid=composer-input]`)),
		// The demo data and the new team reach the services in their own
		// time: the command is typed again until the answer has the lead.
		until(55*time.Second, 3*time.Second, chromedp.Steps(
			chromedp.SetValue(css(`[data-testid=composer-input]`), "/zcrm leads watson"),
			chromedp.Click(css(`[data-testid=composer-send]`)),
		), `!!document.querySelector('`+share+`') && `+seen("Emma Watson", "true")),
		chromedp.WaitVisible(css(`[data-testid=only-you]`)))

	// 3. Share: the card in the channel, for everyone.
	b.do("share-card", 30*time.Second,
		chromedp.Click(css(share)),
		poll(seen("Watson", "false"), 40*time.Second))

	// A report chart shared from the CRM: the PNG the product uploads is
	// shown in the channel, decoded by the browser.
	b.do("chart-image", 40*time.Second,
		chromedp.Click(css(`[data-testid=crm-chart-submit]`)),
		poll(`[...document.querySelectorAll('article[data-ephemeral=false] img[data-testid=file-image]')].some(i => i.complete && i.naturalWidth > 100)`, 35*time.Second))

	// 4. A workflow action on the rule "deal-won", saved in the console,
	// fired from the panel. The workflows service refuses a template until
	// it has seen the module's schema (from the demo data): the form then
	// says so where the field is, and is sent again.
	const template = "*Deal won*: #{Deals.Deal Name}, #{Deals.Amount}, by #{Owner.Full Name}"
	b.do("console-workflow-action", 60*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		deadline := time.Now().Add(55 * time.Second)
		for {
			_, err := chromedp.Steps(
				chromedp.Navigate(console+"/workflows/new?rule=deal-won"),
				chromedp.SetValue(css(`[data-testid=action-rule]`), "deal-won"),
				chromedp.SetValue(css(`[data-testid=action-module]`), "Deals"),
				chromedp.SetValue(css(`[data-testid=action-template]`), template),
				chromedp.SetValue(css(`[data-testid=action-team]`), team),
				chromedp.Click(css(`[data-testid=action-kind-channels]`)),
				chromedp.SetValue(css(`[data-testid=action-targets]`), sales),
				chromedp.Click(css(`[data-testid=action-save]`)),
				waitJS(`location.search.includes("ok=action-created") || !!document.querySelector('[data-testid^="error-"]')`, 15*time.Second),
			)(ctx, tg)
			if err != nil {
				return err
			}
			created, err := chromedp.Evaluate[bool](`location.search.includes("ok=action-created")`)(ctx, tg)
			if err == nil && created {
				return nil
			}
			refusal, _ := chromedp.Evaluate[string](`[...document.querySelectorAll('[data-testid^="error-"]')].map(e => e.innerText).join("; ")`)(ctx, tg)
			if time.Now().After(deadline) {
				return fmt.Errorf("the console never saved the action: %s", refusal)
			}
			t.Logf("the console refused the action for now: %s", refusal)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}), waitText("deal-won", 5*time.Second))
	b.do("workflow-rule-page", 30*time.Second,
		chromedp.Navigate(page),
		chromedp.WaitVisible(css(`[data-testid=crm-rule-submit]`)))
	b.do("workflow-rule", 30*time.Second,
		chromedp.SetValue(css(`[data-testid=crm-rule-id]`), "deal-won"),
		chromedp.SetValue(css(`[data-testid=crm-rule-record]`), "Deals/deal-001"),
		chromedp.Click(css(`[data-testid=crm-rule-submit]`)),
		poll(seen("Deal won: Zoho Corp — Expansion", "false"), 40*time.Second))
	// "Deal won" in the panel: the deal's new stage, and its rule fires.
	b.do("deal-won", 30*time.Second,
		chromedp.SetValue(css(`#deal`), "deal-000"),
		chromedp.Click(css(`[data-testid=crm-deal-won-submit]`)),
		poll(seen("Deal won: Zylker Corp — Renewal", "false"), 25*time.Second))

	// 5. "Manqué" under "Appel" ticked in the console's SalesSignals
	// matrix (and Acme as the team owners are notified in): a missed call
	// reaches the owner's DM.
	b.do("console-signals", 40*time.Second,
		chromedp.Navigate(console+"/signals"),
		chromedp.WaitVisible(css(`[data-testid=signal-call-missed]`)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=signal-call-missed]').checked = true`),
		chromedp.Click(css(`[data-testid=signals-save]`)),
		waitJS(`location.search.includes("ok=signals-saved")`, 15*time.Second),
		chromedp.WaitVisible(css(`[data-testid=signals-default-team]`)),
		chromedp.SetValue(css(`[data-testid=signals-default-team]`), team),
		chromedp.Click(css(`[data-testid=signals-default-team-save]`)),
		waitJS(`location.search.includes("ok=team-saved") && document.querySelector('[data-testid=signal-call-missed]').checked`, 15*time.Second))
	b.do("missed-call-page", 30*time.Second,
		chromedp.Navigate(page),
		chromedp.WaitVisible(css(`[data-testid=crm-missed-call-submit]`)))
	dm := `[data-testid="dm-crmslack"]`
	var dmURL string
	b.do("missed-call-dm", 45*time.Second,
		chromedp.SetValue(css(`#contact`), "cont-000"),
		chromedp.Click(css(`[data-testid=crm-missed-call-submit]`)),
		poll(`document.getElementById("status").innerText.startsWith("Published")`, 10*time.Second),
		until(40*time.Second, 2*time.Second, chromedp.Navigate(page), `!!document.querySelector('`+dm+`')`),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			// Follow the DM's link: a poll does not survive a click's navigation.
			href, err := chromedp.Evaluate[string](`document.querySelector('`+dm+`').href`)(ctx, tg)
			if err != nil {
				return err
			}
			dmURL = href
			_, err = chromedp.Navigate(href)(ctx, tg)
			return err
		}),
		poll(seen("Emma Watson", "false"), 40*time.Second))

	// 6. Bob signs in to the console and turns his Slack reminders on (he
	// unticks "Désactiver les rappels via Slack" and picks Acme); an
	// activity's reminder then reaches his DM.
	b.do("console-reminders", 40*time.Second,
		chromedp.Navigate(console+"/teams"),
		chromedp.Click(css(`[data-testid=logout]`)),
		waitJS(`!!document.querySelector('[data-testid=dev-login-submit]')`, 10*time.Second),
		chromedp.SetValue(css(`[data-testid=dev-login-email]`), "bob@acme.example"),
		chromedp.SetValue(css(`[data-testid=dev-login-name]`), "Bob Durand"),
		chromedp.Click(css(`[data-testid=dev-login-role-user]`)),
		chromedp.Click(css(`[data-testid=dev-login-submit]`)),
		waitText("bob@acme.example", 10*time.Second),
		chromedp.Navigate(console+"/reminders"),
		chromedp.WaitVisible(css(`[data-testid=reminders-save]`)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=reminders-disabled]').checked = false`),
		chromedp.SetValue(css(`[data-testid=reminders-team]`), team),
		chromedp.Click(css(`[data-testid=reminders-save]`)),
		waitJS(`location.search.includes("ok=reminders") && !document.querySelector('[data-testid=reminders-disabled]').checked`, 15*time.Second))
	b.do("activity-page", 30*time.Second,
		chromedp.Navigate(dmURL),
		chromedp.WaitVisible(css(`[data-testid=crm-activity-submit]`)))
	const subject = "Call Emma Watson about the renewal"
	b.do("activity-reminder", 45*time.Second,
		chromedp.SetValue(css(`[data-testid=crm-activity-subject]`), subject),
		chromedp.Click(css(`[data-testid=crm-activity-submit]`)),
		poll(`document.getElementById("status").innerText.startsWith("Published")`, 10*time.Second),
		poll(seen(subject, "false"), 40*time.Second))
}
