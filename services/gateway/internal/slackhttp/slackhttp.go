// Package slackhttp serves the Slack endpoints of the gateway:
// /slack/commands, /slack/interactions and /slack/events. Every request's
// signature is checked on the raw, size-capped body before anything is
// parsed; what passes is published to JetStream and acknowledged at once,
// well inside Slack's three seconds. Events are published with Slack's
// event_id as the message id, so Slack's retries (X-Slack-Retry-Num) and
// repeats of one event, on any gateway replica, are stored once.
package slackhttp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/responseurl"
	"github.com/crmslack/crmslack/libs/topology"
	"github.com/crmslack/crmslack/libs/tracectx"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/services/gateway/internal/teamdir"
	"github.com/crmslack/crmslack/services/gateway/internal/verify"
)

// Producer names the gateway in envelopes.
const Producer = "gateway"

// DefaultMaxBody caps a Slack request body. Slack's own payloads stay far
// below it (a slash command is a few hundred bytes, a block_actions payload
// a few KiB).
const DefaultMaxBody = 1 << 20

// DefaultAckBudget is how long a request may spend publishing before the
// gateway gives up and answers 503, leaving Slack's retry to try again.
// Slack waits three seconds.
const DefaultAckBudget = 2500 * time.Millisecond

// Events the gateway passes on; others are acknowledged and dropped.
var forwardedEvents = map[string]bool{"app_uninstalled": true, "tokens_revoked": true}

// DefaultAnswerBudget is how long the gateway waits for a synchronous answer
// to a slash command before it answers "Searching…" and lets the answer
// follow through the response_url. With the publish that then follows, the
// whole stays inside Slack's three seconds.
const DefaultAnswerBudget = 1500 * time.Millisecond

// slackDeadline is how long after a request's arrival its answer must be on
// the wire: Slack gives up at three seconds.
const slackDeadline = 2800 * time.Millisecond

// Messages shown to Slack users.
const (
	MsgNotConnected = "This Slack workspace is not connected to a CRM. Ask a CRM administrator to add it under Setup > Marketplace > Slack."
	MsgDisabled     = "The CRM integration is turned off for this workspace. Ask a CRM administrator to enable it."
	MsgSearching    = "Searching the CRM… the results will appear here in a moment."
	MsgUnavailable  = "CRM search is unavailable right now. Please try again in a moment."
	MsgSeveralOrgs  = "This Slack workspace is connected to several CRM organisations, so /zcrm cannot tell which one to search. Ask a CRM administrator to keep the workspace in one organisation."
	MsgReconnect    = "This Slack workspace must be reconnected to the CRM: Slack no longer accepts the app's authorization (it was revoked or the workspace changed). Ask a CRM administrator to reconnect Slack under Setup > Marketplace > Slack."
	MsgNoAnswer     = "The CRM did not answer in time, so there are no results to show. Please try again in a moment."
	MsgShareNoReply = "Sharing did not answer in time. If the record does not appear in the conversation shortly, please try again."
	MsgInvalidText  = "Your command contains bytes that are not valid text (UTF-8), so the CRM cannot search for it. Please type it again."
)

// Answerer answers a slash command while the request waits, within ctx's
// deadline. It returns the JSON body Slack shows (an ephemeral message).
type Answerer interface {
	Answer(ctx context.Context, org string, c SlashCommand) ([]byte, error)
}

// Followups answer deferred requests that nothing else answered.
type Followups interface {
	// Expect waits for the egress to deliver the answer to the request
	// with event id id, arrived at since, and posts text to responseURL
	// if none comes in time.
	Expect(id string, since time.Time, responseURL, text string)
	// Post posts text to responseURL now.
	Post(ctx context.Context, responseURL, text string) error
}

// Publisher publishes one event and waits for the stream's ack.
type Publisher interface {
	Publish(ctx context.Context, subject string, ev bus.Event) error
}

// Directory resolves a team to its orgs.
type Directory interface {
	Resolve(team string) teamdir.Resolution
	// Synced reports whether the directory has loaded; before that an
	// unknown team is not known to be unconnected.
	Synced() bool
}

// Handler serves the three Slack endpoints.
type Handler struct {
	verifier  *verify.Verifier
	pub       Publisher
	dir       Directory
	log       *slog.Logger
	maxBody   int64
	ackBudget time.Duration
	now       func() time.Time

	answerer     Answerer
	answered     map[string]bool
	answerBudget time.Duration
	replies      *responseurl.Policy
	followups    Followups

	refused  *refusals
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// Options configure New.
type Options struct {
	MaxBody   int64         // default DefaultMaxBody
	AckBudget time.Duration // default DefaultAckBudget
	Now       func() time.Time
	// Registerer receives the request metrics; nil registers none.
	Registerer prometheus.Registerer
	// Answerer answers the Commands synchronously; nil publishes every
	// command for a consumer to answer.
	Answerer Answerer
	// Commands are the slash commands the Answerer answers, e.g. "/zcrm".
	Commands []string
	// AnswerBudget is how long to wait for the Answerer; default
	// DefaultAnswerBudget.
	AnswerBudget time.Duration
	// Followups, when set, make sure deferred commands and Share clicks
	// end with a message, and tell users of a team that cannot be served
	// why their click did nothing.
	Followups Followups
	// ResponseURLs are the response_urls accepted; a request carrying any
	// other is refused. Default responseurl.Slack().
	ResponseURLs *responseurl.Policy
}

// New returns the handler.
func New(v *verify.Verifier, pub Publisher, dir Directory, log *slog.Logger, o Options) (*Handler, error) {
	h := &Handler{
		verifier: v, pub: pub, dir: dir, log: log, maxBody: o.MaxBody, ackBudget: o.AckBudget, now: o.Now,
		answerer: o.Answerer, answered: map[string]bool{}, answerBudget: o.AnswerBudget, replies: o.ResponseURLs, followups: o.Followups,
	}
	if h.replies == nil {
		h.replies = responseurl.Slack()
	}
	for _, c := range o.Commands {
		h.answered[c] = true
	}
	if h.answerBudget <= 0 {
		h.answerBudget = DefaultAnswerBudget
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBody
	}
	if h.ackBudget <= 0 {
		h.ackBudget = DefaultAckBudget
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.refused = newRefusals(log, h.now)
	h.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmslack_gateway_slack_requests_total",
		Help: "Slack requests by endpoint and outcome (published, answered, deferred, ignored, unknown_team, bad_signature, bad_payload, too_large, publish_failed, challenge).",
	}, []string{"endpoint", "outcome"})
	h.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "crmslack_gateway_slack_ack_seconds",
		Help:    "Time from a Slack request's arrival to its answer.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"endpoint"})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{h.requests, h.latency, h.refused.total} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /slack/commands", h.serve("commands", h.command))
	mux.HandleFunc("POST /slack/interactions", h.serve("interactions", h.interaction))
	mux.HandleFunc("POST /slack/events", h.serve("events", h.event))
}

// request is a verified Slack request on its way through a handler.
type request struct {
	ctx      context.Context
	start    time.Time
	endpoint string
	body     []byte
	header   http.Header
}

// outcome is a handler's answer.
type outcome struct {
	status      int
	contentType string
	body        []byte
	label       string
}

func (h *Handler) serve(endpoint string, handle func(*request) outcome) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := tracectx.Ensure(r.Context())
		out := h.verified(ctx, start, endpoint, w, r, handle)
		if out.contentType != "" {
			w.Header().Set("Content-Type", out.contentType)
		}
		w.WriteHeader(out.status)
		if len(out.body) > 0 {
			_, _ = w.Write(out.body)
		}
		h.requests.WithLabelValues(endpoint, out.label).Inc()
		h.latency.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	}
}

func plain(status int, label, msg string) outcome {
	return outcome{status: status, contentType: "text/plain; charset=utf-8", body: []byte(msg + "\n"), label: label}
}

func (h *Handler) verified(ctx context.Context, start time.Time, endpoint string, w http.ResponseWriter, r *http.Request, handle func(*request) outcome) outcome {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.refused.refuse(ctx, endpoint, "too_large", "slack request refused: body too large", "limit", h.maxBody, "remote", remoteIP(r))
			return plain(http.StatusRequestEntityTooLarge, "too_large", "request body too large")
		}
		h.refused.refuse(ctx, endpoint, "unreadable", "slack request refused: body unreadable", "remote", remoteIP(r))
		return plain(http.StatusBadRequest, "bad_payload", "cannot read request body")
	}
	if err := h.verifier.Verify(r.Header.Get(verify.HeaderTimestamp), r.Header.Get(verify.HeaderSignature), body); err != nil {
		// The error is one of verify's fixed errors: no secret, no
		// signature, no body.
		h.refused.refuse(ctx, endpoint, signatureReason(err), "slack request refused: signature check failed", "err", err.Error(), "remote", remoteIP(r))
		return plain(http.StatusUnauthorized, "bad_signature", "invalid request signature")
	}
	return handle(&request{ctx: ctx, start: start, endpoint: endpoint, body: body, header: r.Header})
}

// signatureReason names a signature failure for the refusal metric.
func signatureReason(err error) string {
	switch {
	case errors.Is(err, verify.ErrMissing):
		return "signature_missing"
	case errors.Is(err, verify.ErrMalformed):
		return "signature_malformed"
	case errors.Is(err, verify.ErrStale):
		return "signature_stale"
	default:
		return "signature_mismatch"
	}
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// envelope builds the envelope of an inbound message. The org is the one
// that owns the team when there is exactly one; otherwise (an unknown team,
// or one serving several orgs) it is "slack:<team>", which no org id can
// be, and consumers resolve the org themselves.
func (h *Handler) envelope(ctx context.Context, id, team string, res teamdir.Resolution) *commonv1.Envelope {
	org := "slack:" + team
	if len(res.Orgs) == 1 {
		org = res.Orgs[0]
	}
	env := &commonv1.Envelope{EventId: id, OrgId: org, OccurredAt: timestamppb.New(h.now()), SchemaVersion: 1, Producer: Producer}
	if tc, ok := tracectx.FromContext(ctx); ok {
		env.Trace = &commonv1.TraceContext{Traceparent: tc.Traceparent()}
	}
	return env
}

// publish publishes within the ack budget; false means the request should
// be answered 503 so Slack retries.
func (h *Handler) publish(r *request, subject string, ev bus.Event) bool {
	return h.publishWithin(r, h.ackBudget, subject, ev)
}

func (h *Handler) publishWithin(r *request, budget time.Duration, subject string, ev bus.Event) bool {
	ctx, cancel := context.WithTimeout(r.ctx, budget)
	defer cancel()
	if err := h.pub.Publish(ctx, subject, ev); err != nil {
		h.log.ErrorContext(r.ctx, "slack request not published; Slack will retry", "endpoint", r.endpoint, "subject", subject, "err", err)
		return false
	}
	return true
}

// payloadID is an id of a request without one of Slack's: a hash of the
// fields that make it unique, so a replay of it has the same id.
func payloadID(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		_, _ = io.WriteString(h, strconv.Itoa(len(f)))
		_, _ = io.WriteString(h, ":")
		_, _ = io.WriteString(h, f)
	}
	return "p" + hex.EncodeToString(h.Sum(nil)[:16])
}

func (h *Handler) command(r *request) outcome {
	c, err := ParseSlashCommand(r.body)
	if err != nil {
		h.refused.refuse(r.ctx, r.endpoint, "bad_payload", "slash command refused", "err", err)
		return plain(http.StatusBadRequest, "bad_payload", "malformed slash command")
	}
	if err := h.replies.Check(c.ResponseURL); err != nil {
		h.refused.refuse(r.ctx, r.endpoint, "response_url", "slash command refused: its response_url is not Slack's", "team", c.TeamID, "err", err)
		return plain(http.StatusBadRequest, "bad_payload", "response_url is not a Slack reply endpoint")
	}
	if !utf8.ValidString(c.Text) {
		// Slack sends UTF-8; what is not cannot be searched, and the
		// user is told so rather than left with "unavailable".
		h.refused.refuse(r.ctx, r.endpoint, "invalid_utf8", "slash command text is not valid UTF-8", "team", c.TeamID, "bytes", len(c.Text))
		return ephemeral("invalid_utf8", MsgInvalidText)
	}
	res := h.dir.Resolve(c.TeamID)
	if (!res.Known() && h.dir.Synced()) || res.Disabled || res.NeedsReauth {
		msg := MsgNotConnected
		label := "unknown_team"
		switch {
		case res.Disabled:
			msg, label = MsgDisabled, "disabled"
		case res.NeedsReauth:
			msg, label = MsgReconnect, "needs_reauth"
		}
		h.log.InfoContext(r.ctx, "slash command from a workspace without an active CRM", "team", c.TeamID, "disabled", res.Disabled, "needs_reauth", res.NeedsReauth)
		return ephemeral(label, msg)
	}
	triggerID := c.TriggerID
	if c.TriggerID == "" {
		// Only to give the command an id, the same for a replay of the
		// same request: never passed on as a trigger.
		c.TriggerID = payloadID(c.TeamID, c.UserID, c.ChannelID, c.Command, c.Text, c.ResponseURL)
	}
	ev := &slackv1.SlashCommandReceived{
		Envelope: h.envelope(r.ctx, CommandEventID(c), c.TeamID, res),
		TeamId:   c.TeamID, EnterpriseId: c.EnterpriseID, ChannelId: c.ChannelID, UserId: c.UserID,
		Command: c.Command, Text: c.Text, ResponseUrl: c.ResponseURL, TriggerId: triggerID,
	}
	if h.answerer != nil && h.answered[c.Command] {
		return h.answer(r, c, res, ev)
	}
	if !h.publish(r, topology.SlackCommand(c.TeamID), ev) {
		return plain(http.StatusServiceUnavailable, "publish_failed", "try again")
	}
	return outcome{status: http.StatusOK, label: "published"}
}

// CommandEventID is a slash command's event id: Slack does not retry slash
// commands, and trigger_id is unique per invocation.
func CommandEventID(c SlashCommand) string { return "slack-command:" + c.TriggerID }

// answer answers a command while Slack waits, or, when the answer is not
// ready within the budget, says "Searching…" at once and publishes the
// command as deferred so its answer follows through the response_url. The
// gateway alone decides which of the two happened, so a command is answered
// exactly once; Slack never sees a timeout, since slash commands are not
// retried and a 503 would show the user an error.
func (h *Handler) answer(r *request, c SlashCommand, res teamdir.Resolution, ev *slackv1.SlashCommandReceived) outcome {
	if len(res.Orgs) != 1 {
		return ephemeral("several_orgs", MsgSeveralOrgs)
	}
	subject := topology.SlackCommand(c.TeamID)
	ctx, cancel := context.WithTimeout(r.ctx, h.answerBudget)
	body, err := h.answerer.Answer(ctx, res.Orgs[0], c)
	cancel()
	if err == nil {
		// Recorded for the audit trail only; losing the record costs the
		// user nothing, so its failure does not change the answer.
		left := slackDeadline - time.Since(r.start)
		if left > 0 {
			if !h.publishWithin(r, min(left, h.ackBudget), subject, ev) {
				h.log.WarnContext(r.ctx, "answered slash command not recorded", "team", c.TeamID)
			}
		}
		return outcome{status: http.StatusOK, contentType: "application/json", body: body, label: "answered"}
	}
	h.log.WarnContext(r.ctx, "slash command not answered in time; the answer follows through response_url",
		"team", c.TeamID, "budget", h.answerBudget, "err", err)
	ev.Deferred = true
	left := slackDeadline - time.Since(r.start)
	if left <= 0 || !h.publishWithin(r, min(left, h.ackBudget), subject, ev) {
		return ephemeral("publish_failed", MsgUnavailable)
	}
	if h.followups != nil {
		h.followups.Expect(ev.GetEnvelope().GetEventId(), r.start, c.ResponseURL, MsgNoAnswer)
	}
	return ephemeral("deferred", MsgSearching)
}

// ephemeral is an answer only the caller sees.
func ephemeral(label, text string) outcome {
	body, _ := json.Marshal(map[string]string{"response_type": "ephemeral", "text": text})
	return outcome{status: http.StatusOK, contentType: "application/json", body: body, label: label}
}

func (h *Handler) interaction(r *request) outcome {
	in, err := ParseInteraction(r.body)
	if err != nil {
		h.refused.refuse(r.ctx, r.endpoint, "bad_payload", "interaction refused", "err", err)
		return plain(http.StatusBadRequest, "bad_payload", "malformed interaction")
	}
	if in.ResponseURL != "" {
		if err := h.replies.Check(in.ResponseURL); err != nil {
			h.refused.refuse(r.ctx, r.endpoint, "response_url", "interaction refused: its response_url is not Slack's", "team", in.TeamID, "err", err)
			return plain(http.StatusBadRequest, "bad_payload", "response_url is not a Slack reply endpoint")
		}
	}
	if in.Type != "block_actions" {
		return outcome{status: http.StatusOK, label: "ignored"}
	}
	res := h.dir.Resolve(in.TeamID)
	if (!res.Known() && h.dir.Synced()) || res.Disabled || res.NeedsReauth {
		h.log.InfoContext(r.ctx, "interaction from a workspace without an active CRM", "team", in.TeamID)
		msg := MsgNotConnected
		switch {
		case res.Disabled:
			msg = MsgDisabled
		case res.NeedsReauth:
			msg = MsgReconnect
		}
		h.tell(r, in.ResponseURL, msg)
		return outcome{status: http.StatusOK, label: "unknown_team"}
	}
	id := in.TriggerID
	if id == "" {
		// Derived from the payload, so a replayed click is the same event
		// and the stream's duplicate window drops it.
		id = payloadID(in.TeamID, in.UserID, in.ActionTS, in.ActionID, in.BlockID, in.Value, in.MessageTS)
	}
	ev := &slackv1.InteractionReceived{
		Envelope: h.envelope(r.ctx, "slack-interaction:"+id, in.TeamID, res),
		TeamId:   in.TeamID, ChannelId: in.ChannelID, UserId: in.UserID, ActionId: in.ActionID,
		BlockId: in.BlockID, Value: in.Value, ResponseUrl: in.ResponseURL, TriggerId: in.TriggerID,
		MessageTs: in.MessageTS,
	}
	if !h.publish(r, topology.SlackInteraction(in.TeamID), ev) {
		return plain(http.StatusServiceUnavailable, "publish_failed", "try again")
	}
	if h.followups != nil && in.ActionID == card.ShareActionID && in.ResponseURL != "" {
		h.followups.Expect(ev.GetEnvelope().GetEventId(), r.start, in.ResponseURL, MsgShareNoReply)
	}
	return outcome{status: http.StatusOK, label: "published"}
}

// tell answers an interaction that no service will handle, through its
// response_url, without holding up Slack's request.
func (h *Handler) tell(r *request, responseURL, text string) {
	if h.followups == nil || responseURL == "" {
		return
	}
	ctx := context.WithoutCancel(r.ctx)
	go func() {
		if err := h.followups.Post(ctx, responseURL, text); err != nil {
			h.log.WarnContext(ctx, "could not tell the user why their click did nothing", "err", err)
		}
	}()
}

func (h *Handler) event(r *request) outcome {
	e, err := ParseEvent(r.body)
	if err != nil {
		h.refused.refuse(r.ctx, r.endpoint, "bad_payload", "event refused", "err", err)
		return plain(http.StatusBadRequest, "bad_payload", "malformed event")
	}
	if e.Type == TypeURLVerification {
		return outcome{status: http.StatusOK, contentType: "text/plain; charset=utf-8", body: []byte(e.Challenge), label: "challenge"}
	}
	retry, _ := strconv.Atoi(r.header.Get("X-Slack-Retry-Num"))
	if !forwardedEvents[e.Event.Type] {
		return outcome{status: http.StatusOK, label: "ignored"}
	}
	ev := &slackv1.SlackEventReceived{
		// Slack's event id, not the retry number: every retry of one event
		// carries the same id and the stream keeps the first.
		Envelope:     h.envelope(r.ctx, "slack-event:"+e.EventID, e.TeamID, h.dir.Resolve(e.TeamID)),
		SlackEventId: e.EventID, TeamId: e.TeamID, EnterpriseId: e.EnterpriseID, ApiAppId: e.APIAppID,
		Type: e.Event.Type, RevokedBotUserIds: e.Event.Tokens.Bot, RevokedUserIds: e.Event.Tokens.OAuth,
		EventTime: e.EventTime,
	}
	if !h.publish(r, topology.SlackEvent(e.TeamID, e.Event.Type), ev) {
		return plain(http.StatusServiceUnavailable, "publish_failed", "try again")
	}
	h.log.InfoContext(r.ctx, "slack event published", "team", e.TeamID, "type", e.Event.Type, "slack_event_id", e.EventID, "retry", retry)
	return outcome{status: http.StatusOK, label: "published"}
}
