// Package render builds a reminder's Slack message: what, when (in the
// reader's time zone, "in 15 minutes"), where or the dial-in link, who,
// the related record, and the Open in CRM, Snooze and Mark done buttons.
package render

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/blockkit"
	"github.com/crmslack/crmslack/libs/card"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

	"github.com/crmslack/crmslack/libs/slacktext"
	"github.com/crmslack/crmslack/services/reminders/internal/remind"
)

// Input is one reminder to render.
type Input struct {
	Activity *crmv1.Activity
	// Now is when the message is built; "in 15 minutes" counts from it.
	Now time.Time
	// DueAt is when the reminder was due, for a late one's note.
	DueAt time.Time
	Late  bool
	// Loc is the reader's time zone for the fallback text; Slack shows
	// the date token in each reader's own.
	Loc *time.Location
	// ButtonValue is the Snooze and Mark done buttons' value: the
	// reminder, signed (remind.Buttons).
	ButtonValue string
	// Snooze is how long Snooze waits.
	Snooze time.Duration
	// CRMBaseURL builds Open in CRM for an activity without a URL.
	CRMBaseURL string
}

// Message is the rendered reminder.
type Message struct {
	// Text is the notification and screen-reader fallback.
	Text   string
	Blocks []slack.Block
}

// BlocksJSON is the blocks as the JSON array Slack takes.
func (m Message) BlocksJSON() ([]byte, error) {
	b, err := json.Marshal(slack.Blocks{BlockSet: m.Blocks})
	if err != nil {
		return nil, fmt.Errorf("encoding the reminder's blocks: %w", err)
	}
	return b, nil
}

// maxPeople is how many participants are named before "and N more".
const maxPeople = 10

// Render builds the message.
func Render(in Input) Message {
	a := in.Activity
	if in.Loc == nil {
		in.Loc = time.UTC
	}
	kind := kindLabel(a.GetKind())
	title := a.GetSubject()
	if strings.TrimSpace(title) == "" {
		title = "(no subject)"
	}
	start := a.GetStartAt().AsTime()
	when := relative(start.Sub(in.Now), a.GetKind())
	local := localTime(start, in.Loc, a.GetAllDay())

	text := fmt.Sprintf("Reminder: %s %q %s (%s)", strings.ToLower(kind), slacktext.Escape(title), when, local)
	if in.Late {
		text = "Late reminder: " + strings.TrimPrefix(text, "Reminder: ")
	}

	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, slacktext.Plain(emoji(a.GetKind())+" "+kind+": "+title, blockkit.MaxHeaderText), true, false)),
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType,
			slacktext.Cut(fmt.Sprintf("*%s* · %s", capitalise(when), slackDate(start, local, a.GetAllDay())), blockkit.MaxSectionText), false, false), nil, nil),
	}
	if in.Late {
		blocks = append(blocks, slack.NewContextBlock("late", slack.NewTextBlockObject(slack.MarkdownType,
			slacktext.Cut(fmt.Sprintf(":warning: Late: this reminder was due at %s and is sent late because reminders were unavailable.",
				localTime(in.DueAt, in.Loc, false)), blockkit.MaxSectionText), false, false)))
	}
	if fields := details(a); len(fields) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	}
	if d := strings.TrimSpace(a.GetDescription()); d != "" {
		blocks = append(blocks, slack.NewContextBlock("description",
			slack.NewTextBlockObject(slack.PlainTextType, slacktext.Plain(d, blockkit.MaxSectionText), false, false)))
	}
	blocks = append(blocks, actions(in))
	return Message{Text: slacktext.Cut(text, blockkit.MaxMessageText), Blocks: blocks}
}

func details(a *crmv1.Activity) []*slack.TextBlockObject {
	var fields []*slack.TextBlockObject
	field := func(label, value string) {
		if value == "" {
			return
		}
		fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType,
			slacktext.Cut("*"+label+"*\n"+value, blockkit.MaxSectionFieldText), false, false))
	}
	if loc := strings.TrimSpace(a.GetLocation()); loc != "" {
		if u, err := url.Parse(loc); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			field("Dial-in", "<"+loc+"|Join>")
		} else {
			field("Where", slacktext.Escape(loc))
		}
	}
	if a.GetKind() == crmv1.ActivityKind_ACTIVITY_KIND_CALL {
		switch a.GetCallDirection() {
		case crmv1.CallDirection_CALL_DIRECTION_INBOUND:
			field("Call", "Inbound")
		case crmv1.CallDirection_CALL_DIRECTION_OUTBOUND:
			field("Call", "Outbound")
		}
	}
	if r := a.GetRelatedTo(); r.GetId() != "" {
		name := r.GetName()
		if name == "" {
			name = r.GetId()
		}
		field("Related to", slacktext.Escape(r.GetModule()+": "+name))
	}
	field("Owner", slacktext.Escape(a.GetOwner().GetName()))
	var names []string
	for _, p := range a.GetParticipants() {
		n := p.GetName()
		if n == "" {
			n = p.GetEmail()
		}
		if n != "" {
			names = append(names, slacktext.Escape(n))
		}
	}
	if len(names) > maxPeople {
		names = append(names[:maxPeople], fmt.Sprintf("and %d more", len(names)-maxPeople))
	}
	field("Participants", strings.Join(names, ", "))
	if a.GetKind() == crmv1.ActivityKind_ACTIVITY_KIND_TASK {
		field("Priority", slacktext.Escape(a.GetPriority()))
	}
	return fields
}

func actions(in Input) slack.Block {
	var els []slack.BlockElement
	if link := openURL(in.Activity, in.CRMBaseURL); link != "" {
		open := slack.NewButtonBlockElement(remind.ActionOpen, "", slack.NewTextBlockObject(slack.PlainTextType, "Open in CRM", false, false))
		open.URL = link
		els = append(els, open)
	}
	value := in.ButtonValue
	els = append(els, slack.NewButtonBlockElement(remind.ActionSnooze, value,
		slack.NewTextBlockObject(slack.PlainTextType, "Snooze "+duration(in.Snooze), false, false)))
	if in.Activity.GetKind() == crmv1.ActivityKind_ACTIVITY_KIND_TASK {
		done := slack.NewButtonBlockElement(remind.ActionDone, value,
			slack.NewTextBlockObject(slack.PlainTextType, "Mark done", false, false))
		done.Style = slack.StylePrimary
		els = append(els, done)
	}
	return slack.NewActionBlock("reminder_actions", els...)
}

// openURL is the activity's own link, else <base>/Activities/<id>.
func openURL(a *crmv1.Activity, base string) string {
	if u := a.GetUrl(); u != "" && len(u) <= blockkit.MaxURL {
		return u
	}
	if base == "" {
		return ""
	}
	return card.DefaultURL(base, "Activities", a.GetId())
}

func kindLabel(k crmv1.ActivityKind) string {
	switch k {
	case crmv1.ActivityKind_ACTIVITY_KIND_TASK:
		return "Task"
	case crmv1.ActivityKind_ACTIVITY_KIND_CALL:
		return "Call"
	default:
		return "Meeting"
	}
}

func emoji(k crmv1.ActivityKind) string {
	switch k {
	case crmv1.ActivityKind_ACTIVITY_KIND_TASK:
		return "✅"
	case crmv1.ActivityKind_ACTIVITY_KIND_CALL:
		return "📞"
	default:
		return "📅"
	}
}

// relative says when, from now: "starts in 15 minutes", "is due now".
func relative(d time.Duration, k crmv1.ActivityKind) string {
	verb, past := "starts", "started"
	if k == crmv1.ActivityKind_ACTIVITY_KIND_TASK {
		verb, past = "is due", "was due"
	}
	// Round to the minute: a reminder set for 15 minutes ahead fires a
	// fraction of a second late and still says "in 15 minutes".
	m := int((d + 30*time.Second).Truncate(time.Minute) / time.Minute)
	if d < 0 {
		m = -int((-d + 30*time.Second).Truncate(time.Minute) / time.Minute)
	}
	switch {
	case m == 0:
		return verb + " now"
	case m > 0:
		return verb + " in " + span(m)
	default:
		return past + " " + span(-m) + " ago"
	}
}

func span(m int) string {
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case m < 60:
		return plural(m, "minute")
	case m < 24*60 && m%60 == 0:
		return plural(m/60, "hour")
	case m < 24*60:
		return plural(m/60, "hour") + " " + plural(m%60, "minute")
	default:
		return plural((m+12*60)/(24*60), "day")
	}
}

// localTime is "14:30 Tue 1 Dec, Europe/Paris" in loc.
func localTime(t time.Time, loc *time.Location, allDay bool) string {
	t = t.In(loc)
	if allDay {
		return t.Format("Mon 2 Jan") + " (all day)"
	}
	return t.Format("15:04 Mon 2 Jan") + ", " + loc.String()
}

// slackDate is Slack's date token, shown in each reader's time zone, with
// the local time as its fallback.
func slackDate(t time.Time, fallback string, allDay bool) string {
	format := "{time} {date_short_pretty}"
	if allDay {
		format = "{date_short_pretty}"
	}
	return fmt.Sprintf("<!date^%d^%s|%s>", t.Unix(), format, fallback)
}

func duration(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min", int(d/time.Minute))
	}
	return d.String()
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
