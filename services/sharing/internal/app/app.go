// Package app is the sharing service's application layer: each exported
// method of [Service] is one use case. Every share passes the same rules
// before anything is published (the org's integration on, the team active
// for the org, the sharer a member of the team, every target inside the
// team), is recorded with an insert, and becomes Slack commands for the
// egress (services/delivery) on slack.out.v1.<org>.<team>.<kind>, whose
// event ids and idempotency keys derive from the share id, so a retried
// share posts nothing twice.
package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/libs/slacktext"
	"github.com/crmslack/crmslack/services/sharing/internal/chart"
	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// Producer names this service in envelopes and in Origin.service; delivery
// outcomes whose origin starts with it are this service's.
const Producer = "sharing"

// Purposes, in Origin.purpose.
const (
	PurposeRecord = "share_record"
	PurposeChart  = "share_chart"
	PurposeButton = "share_button"
)

// MaxUploadBytes bounds a chart PNG: a command must fit a NATS message
// (1 MiB by default) with room for the envelope.
const MaxUploadBytes = 900 << 10

// Config tunes the service.
type Config struct {
	// CRMBaseURL is the CRM's web UI, for "Open in CRM" links of records
	// that carry no URL of their own; empty means no such link.
	CRMBaseURL string
	// RequestMaxAge: a share asked for through the bus longer ago than
	// this is refused instead of posted late. Zero means an hour.
	RequestMaxAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Buttons checks the Share buttons of /zcrm results (SHARE_BUTTON_KEY).
	Buttons *card.Buttons
	// Observe, when set, is told of every decided share: its kind
	// (record, chart), how it was asked (grpc, bus, button) and the result
	// (shared, refused). Run counts them in crmslack_sharing_shares_total.
	Observe func(kind, via, result string)
}

// Service is the sharing use cases. Safe for concurrent use.
type Service struct {
	cfg     Config
	access  Access
	teams   Teams
	records Records
	pub     Publisher
	repo    Repo
	log     *slog.Logger
}

// New builds the service.
func New(cfg Config, access Access, teams Teams, records Records, pub Publisher, repo Repo, log *slog.Logger) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RequestMaxAge == 0 {
		cfg.RequestMaxAge = time.Hour
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string, string, string) {}
	}
	return &Service{cfg: cfg, access: access, teams: teams, records: records, pub: pub, repo: repo, log: log}
}

// Result is an accepted share: its id and the ids of its Slack commands.
type Result struct {
	ShareID    string
	CommandIDs []string
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

func invalid(format string, args ...any) error {
	return share.Errorf(share.ErrInvalid, format, args...)
}

func unavailable(format string, args ...any) error {
	return share.Errorf(share.ErrUnavailable, format, args...)
}

func targetKind(k sharingv1.TargetKind) share.TargetKind {
	switch k {
	case sharingv1.TargetKind_TARGET_KIND_USERS:
		return share.Users
	case sharingv1.TargetKind_TARGET_KIND_CHANNELS:
		return share.Channels
	}
	return ""
}

func person(u *commonv1.CrmUserRef) share.Person {
	return share.Person{ID: u.GetId(), Name: strings.TrimSpace(u.GetName()), Email: strings.TrimSpace(u.GetEmail())}
}

// fingerprint identifies a request whatever its request id.
func fingerprint(req proto.Message, clearID func(proto.Message)) string {
	c := proto.Clone(req)
	clearID(c)
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// checked is what the rules found out about a share that may go ahead.
type checked struct {
	dir share.Directory
	// mention is the sharer's Slack user id in the team, when their email
	// is there; the card then mentions them.
	mention string
}

// check applies the rules every share passes before anything is sent, in
// order: arguments, the org's integration and the team, the sharer's
// membership, the targets. It fills sh.Targets with the checked targets.
func (s *Service) check(ctx context.Context, sh *share.Share, requestID, message string) (checked, error) {
	switch {
	case sh.Org == "":
		return checked{}, invalid("org_id is required")
	case !tokenOK(sh.Org):
		return checked{}, invalid("org_id %q is not an org id", sh.Org)
	case sh.Team == "":
		return checked{}, invalid("team_id is required")
	case !tokenOK(sh.Team):
		return checked{}, invalid("team_id %q is not a Slack team id", sh.Team)
	case sh.Sharer.Email == "" || !strings.Contains(sh.Sharer.Email, "@"):
		return checked{}, invalid("sharer.email is required: membership of the Slack team is checked by email")
	case sh.TargetKind == "":
		return checked{}, invalid("target_kind must say whether the targets are users or channels")
	case utf8.RuneCountInString(message) > share.MaxMessage:
		return checked{}, invalid("message is %d characters, at most %d", utf8.RuneCountInString(message), share.MaxMessage)
	case !share.RequestIDOK(requestID):
		return checked{}, invalid("request_id must be at most 200 bytes without spaces, slashes or control characters")
	}
	if err := s.checkTeam(sh.Org, sh.Team); err != nil {
		return checked{}, err
	}
	teams, err := s.teams.MemberTeams(ctx, sh.Org, sh.Sharer.Email)
	if err != nil {
		return checked{}, err
	}
	if !slices.ContainsFunc(teams, func(t share.Team) bool { return t.ID == sh.Team }) {
		return checked{}, share.Errorf(share.ErrDenied, "%s is not a member of Slack team %s: only members of a team can share to it", sh.Sharer.Email, sh.Team)
	}
	dir, err := s.teams.Directory(ctx, sh.Org, sh.Team)
	if err != nil {
		return checked{}, err
	}
	if sh.Targets, err = share.Targets(sh.TargetKind, sh.Targets, dir); err != nil {
		return checked{}, err
	}
	c := checked{dir: dir}
	if u, ok := dir.UserByEmail(sh.Sharer.Email); ok {
		c.mention = u.ID
	}
	return c, nil
}

func tokenOK(id string) bool {
	_, err := topology.Token(id)
	return err == nil
}

// checkTeam checks the org's integration and the team from memory.
func (s *Service) checkTeam(org, team string) error {
	if !s.access.Synced() {
		return unavailable("the orgs' Slack access is not loaded yet; try again shortly")
	}
	a, known := s.access.Org(org)
	return share.CheckTeam(org, a, known, team)
}

// ShareRecord shares a record's card with channels or people of one team:
// one chat.postMessage per target. via says how it was asked for and
// causation is the event that asked, if any.
func (s *Service) ShareRecord(ctx context.Context, req *sharingv1.ShareRecordRequest, via, causation string) (Result, error) {
	sh := share.Share{
		Org: req.GetOrgId(), Kind: share.KindRecord, Team: req.GetTeamId(),
		TargetKind: targetKind(req.GetTargetKind()), Targets: req.GetTargets(),
		Sharer: person(req.GetSharer()), Via: via, SharedAt: s.now(),
		Module: req.GetModule(), RecordID: req.GetRecordId(),
	}
	if req.GetRecord() != nil {
		sh.RecordID = req.GetRecord().GetId()
	}
	sh.What = strings.TrimSpace(sh.Module + " " + sh.RecordID)
	res, err := s.shareRecord(ctx, &sh, req, causation)
	if err != nil {
		s.refused(ctx, sh, err)
		return Result{}, err
	}
	return res, nil
}

func (s *Service) shareRecord(ctx context.Context, sh *share.Share, req *sharingv1.ShareRecordRequest, causation string) (Result, error) {
	switch {
	case sh.Module == "":
		return Result{}, invalid("module is required")
	case req.GetRecord() == nil && req.GetRecordId() == "":
		return Result{}, invalid("either record (a snapshot) or record_id is required")
	case req.GetRecord() != nil && req.GetRecord().GetModule() != sh.Module:
		return Result{}, invalid("record is of module %q, not %q", req.GetRecord().GetModule(), sh.Module)
	case req.GetRecord() != nil && req.GetRecord().GetId() == "":
		return Result{}, invalid("record.id is required")
	case req.GetSchema() != nil && req.GetSchema().GetModule() != sh.Module:
		return Result{}, invalid("schema is of module %q, not %q", req.GetSchema().GetModule(), sh.Module)
	}
	c, err := s.check(ctx, sh, req.GetRequestId(), req.GetMessage())
	if err != nil {
		return Result{}, err
	}
	rec, schema := req.GetRecord(), req.GetSchema()
	if rec == nil {
		if rec, schema, err = s.records.Record(ctx, sh.Org, sh.Module, sh.RecordID); err != nil {
			return Result{}, err
		}
	}
	sh.What = describe(rec, schema)
	if err := cardView(schema); err != nil {
		return Result{}, err
	}
	cd, err := card.Render(card.Input{
		Config: card.Config{BaseURL: s.cfg.CRMBaseURL}, Record: rec, Schema: schema,
		Message: req.GetMessage(), SharedBy: sharerName(sh.Sharer), SharedBySlackUser: c.mention,
	})
	if err != nil {
		return Result{}, invalid("the record cannot be shown as a card: %v", err)
	}
	blocks, err := json.Marshal(slack.Blocks{BlockSet: cd.Blocks})
	if err != nil {
		return Result{}, fmt.Errorf("encoding the card: %w", err)
	}
	sh.ID = share.ShareID(sh.Org, sh.Kind, req.GetRequestId())
	sh.Fingerprint = fingerprint(req, func(m proto.Message) { m.(*sharingv1.ShareRecordRequest).RequestId = "" })
	subject := topology.SlackOut(sh.Org, sh.Team, "post")
	items := make([]bus.Published, 0, len(sh.Targets))
	for _, t := range sh.Targets {
		id := share.CommandID(sh.ID, t)
		sh.Commands = append(sh.Commands, id)
		items = append(items, bus.Published{Subject: subject, Event: &slackv1.PostMessage{
			Envelope:       s.envelope(sh.Org, id, causation),
			IdempotencyKey: id,
			TeamId:         sh.Team,
			Target:         target(sh.TargetKind, t),
			Text:           cd.Text,
			BlocksJson:     blocks,
			Origin:         origin(PurposeRecord, sh.Sharer),
		}})
	}
	return s.commit(ctx, *sh, items)
}

// ShareChart shares a report's chart, rendered to a PNG, with channels or
// people of one team: one upload shared to every target, the message as
// its initial comment.
func (s *Service) ShareChart(ctx context.Context, req *sharingv1.ShareChartRequest, via, causation string) (Result, error) {
	sh := share.Share{
		Org: req.GetOrgId(), Kind: share.KindChart, Team: req.GetTeamId(), What: strings.TrimSpace(req.GetReportName()),
		TargetKind: targetKind(req.GetTargetKind()), Targets: req.GetTargets(),
		Sharer: person(req.GetSharer()), Via: via, SharedAt: s.now(),
	}
	res, err := s.shareChart(ctx, &sh, req, causation)
	if err != nil {
		s.refused(ctx, sh, err)
		return Result{}, err
	}
	return res, nil
}

func (s *Service) shareChart(ctx context.Context, sh *share.Share, req *sharingv1.ShareChartRequest, causation string) (Result, error) {
	switch {
	case sh.What == "":
		return Result{}, invalid("report_name is required")
	case req.GetChart() == nil:
		return Result{}, share.Errorf(share.ErrPrecondition, "only reports with a chart can be shared: report %q has none", sh.What)
	}
	if err := chart.Validate(req.GetChart()); err != nil {
		return Result{}, invalid("chart: %v", err)
	}
	c, err := s.check(ctx, sh, req.GetRequestId(), req.GetMessage())
	if err != nil {
		return Result{}, err
	}
	png, err := chart.Render(req.GetChart())
	if err != nil {
		return Result{}, invalid("chart: %v", err)
	}
	if len(png) > MaxUploadBytes {
		return Result{}, invalid("the chart's PNG is %d KiB, at most %d KiB: ask for a smaller width_px × height_px", len(png)>>10, MaxUploadBytes>>10)
	}
	sh.ID = share.ShareID(sh.Org, sh.Kind, req.GetRequestId())
	sh.Fingerprint = fingerprint(req, func(m proto.Message) { m.(*sharingv1.ShareChartRequest).RequestId = "" })
	id := share.CommandID(sh.ID, share.UploadSuffix)
	sh.Commands = []string{id}
	targets := make([]*slackv1.Target, len(sh.Targets))
	for i, t := range sh.Targets {
		targets[i] = target(sh.TargetKind, t)
	}
	title := sh.What
	if t := strings.TrimSpace(req.GetChart().GetTitle()); t != "" && t != sh.What {
		title = sh.What + " · " + t
	}
	by := slacktext.Escape(sharerName(sh.Sharer))
	if m := card.Mention(c.mention); m != "" {
		by = m
	}
	comment := "Report “" + slacktext.Escape(sh.What) + "” · Shared by " + by
	if m := strings.TrimSpace(req.GetMessage()); m != "" {
		comment = slacktext.Escape(m) + "\n" + comment
	}
	cmd := &slackv1.UploadFile{
		Envelope:       s.envelope(sh.Org, id, causation),
		IdempotencyKey: id,
		TeamId:         sh.Team,
		Targets:        targets,
		Filename:       filename(sh.What),
		Title:          title,
		ContentType:    "image/png",
		Content:        png,
		InitialComment: comment,
		Origin:         origin(PurposeChart, sh.Sharer),
	}
	return s.commit(ctx, *sh, []bus.Published{{Subject: topology.SlackOut(sh.Org, sh.Team, "upload"), Event: cmd}})
}

// commit records an accepted share, then publishes its commands. The
// record is the claim on the share id: a retry of the same request finds
// it and publishes the same commands again, which the stream (within its
// duplicate window) and the egress (by idempotency key) drop.
func (s *Service) commit(ctx context.Context, sh share.Share, items []bus.Published) (Result, error) {
	created, err := s.repo.Create(ctx, sh)
	if err != nil {
		return Result{}, unavailable("recording the share: %v", err)
	}
	if !created {
		prev, found, err := s.repo.Get(ctx, sh.ID)
		if err != nil {
			return Result{}, unavailable("reading share %s: %v", sh.ID, err)
		}
		if found && prev.Fingerprint != sh.Fingerprint {
			return Result{}, share.Errorf(share.ErrConflict, "this request_id was already used for another share (%s)", sh.ID)
		}
		if found && prev.Refused {
			return Result{}, share.Errorf(share.ErrPrecondition, "share %s was refused: %s", sh.ID, prev.Reason)
		}
		s.log.InfoContext(ctx, "share asked again; sending its commands again", "share", sh.ID, "org", sh.Org)
	}
	if err := s.pub.PublishBatch(ctx, items); err != nil {
		at := s.now()
		outs := make([]share.Outcome, len(sh.Commands))
		for i, c := range sh.Commands {
			outs[i] = share.Outcome{ID: c + "/unsent/" + at.Format("20060102T150405.000"), ShareID: sh.ID, CommandID: c, Unsent: true,
				Reason: "not sent: the bus did not take the command", At: at}
		}
		if rerr := s.repo.AddOutcomes(context.WithoutCancel(ctx), outs...); rerr != nil {
			s.log.WarnContext(ctx, "recording unsent commands", "share", sh.ID, "err", rerr)
		}
		return Result{}, unavailable("sending share %s to Slack: %v", sh.ID, err)
	}
	s.cfg.Observe(sh.Kind, sh.Via, "shared")
	s.log.InfoContext(ctx, "shared", "share", sh.ID, "org", sh.Org, "team", sh.Team, "kind", sh.Kind, "via", sh.Via,
		"targets", len(sh.Targets), "sharer", sh.Sharer.ID)
	return Result{ShareID: sh.ID, CommandIDs: slices.Clone(sh.Commands)}, nil
}

// refused records a share that a rule refused, so ListShares shows it
// with its reason. Failures to decide (a dependency down) are not
// recorded, nor is a request whose org id is not one.
func (s *Service) refused(ctx context.Context, sh share.Share, why error) {
	if !share.IsRefusal(why) || !tokenOK(sh.Org) {
		return
	}
	s.cfg.Observe(sh.Kind, sh.Via, "refused")
	s.log.InfoContext(ctx, "share refused", "org", sh.Org, "team", sh.Team, "kind", sh.Kind, "via", sh.Via, "reason", why.Error())
	if sh.ID == "" {
		sh.ID = share.ShareID(sh.Org, sh.Kind, "")
	}
	sh.Refused, sh.Reason, sh.Commands, sh.Fingerprint = true, why.Error(), nil, ""
	if _, err := s.repo.Create(context.WithoutCancel(ctx), sh); err != nil {
		s.log.WarnContext(ctx, "recording a refused share", "org", sh.Org, "err", err)
	}
}

func (s *Service) envelope(org, id, causation string) *commonv1.Envelope {
	return &commonv1.Envelope{
		EventId: id, OrgId: org, OccurredAt: timestamppb.New(s.cfg.Now()), SchemaVersion: 1,
		Producer: Producer, CausationId: causation,
	}
}

func origin(purpose string, by share.Person) *slackv1.Origin {
	o := &slackv1.Origin{Service: Producer, Purpose: purpose}
	if by != (share.Person{}) {
		o.OnBehalfOf = &commonv1.CrmUserRef{Id: by.ID, Name: by.Name, Email: by.Email}
	}
	return o
}

func target(kind share.TargetKind, id string) *slackv1.Target {
	if kind == share.Users {
		return &slackv1.Target{Kind: &slackv1.Target_SlackUserId{SlackUserId: id}}
	}
	return &slackv1.Target{Kind: &slackv1.Target_ChannelId{ChannelId: id}}
}

func sharerName(p share.Person) string {
	if p.Name != "" {
		return p.Name
	}
	return p.Email
}

// cardView refuses a module the CRM shows without a business card view:
// only modules with one can be shared. Without a schema (a snapshot sent
// alone) the CRM vouches for the module.
func cardView(schema *crmv1.ModuleSchema) error {
	if schema != nil && !schema.GetHasCardView() {
		return share.Errorf(share.ErrPrecondition, "module %s has no business card view in the CRM: only records of modules with one can be shared", schema.GetModule())
	}
	return nil
}

// describe names a record for the share log: "Deals d1 · Q4 licences".
func describe(rec *crmv1.Record, schema *crmv1.ModuleSchema) string {
	s := rec.GetModule() + " " + rec.GetId()
	if df := schema.GetDisplayField(); df != "" {
		if v := card.Value(rec.GetFields()[df], nil, nil); v != "" {
			s += " · " + v
		}
	}
	return s
}

// filename is a report name as a file name: letters, digits, dashes.
func filename(report string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(report) {
		ok := r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 60 {
			break
		}
	}
	name := strings.Trim(b.String(), "-")
	if name == "" {
		name = "chart"
	}
	return name + ".png"
}
