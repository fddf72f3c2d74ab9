// Package app answers a /zcrm command for a Slack user: who is asking (their
// Slack email, matched to an active CRM user of the org), what they asked
// (parse, then bind to the module's fields), and the answer (search the
// in-memory projection, render Block Kit). It is the one place both the
// gRPC port (synchronous answers) and the late-answer consumer call.
package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/services/query/internal/crmusers"
	"github.com/crmslack/crmslack/services/query/internal/filter"
	"github.com/crmslack/crmslack/services/query/internal/projection"
	"github.com/crmslack/crmslack/services/query/internal/render"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

// ErrUnknownSlackUser is returned by a [Directory] that has no such user
// in the team.
var ErrUnknownSlackUser = errors.New("unknown Slack user")

// ErrNeedsReauth is returned by a [Directory] when the team's Slack token
// no longer works: an admin must reconnect Slack.
var ErrNeedsReauth = errors.New("the team must reconnect Slack")

// ErrDependency wraps a failure of the directory or the team registry: the
// answer may succeed later (the gRPC edge says Unavailable, the late-answer
// consumer retries).
var ErrDependency = errors.New("dependency unavailable")

// SlackUser is what the query service needs of a Slack user.
type SlackUser struct {
	Email, RealName string
	// Deleted: deactivated in Slack.
	Deleted bool
}

// Directory finds a Slack user's profile. It returns ErrUnknownSlackUser
// when the team has no such user; any other error is a failure to ask.
type Directory interface {
	SlackUser(ctx context.Context, team, user string) (SlackUser, error)
}

// TeamOrgs names the CRM orgs a Slack team belongs to.
type TeamOrgs interface {
	OrgsOfTeam(ctx context.Context, team string) ([]string, error)
}

// Request is one /zcrm command.
type Request struct {
	// Org is the org that owns the team, when the caller knows it. Empty,
	// or the gateway's "slack:<team>" for a team several orgs share,
	// means "ask the team registry".
	Org        string
	Team, User string
	// Channel is where the command was typed: Share buttons work there only.
	Channel string
	// Text is what followed the command, as Slack sent it.
	Text string
}

// Outcome classifies an answer, for metrics and logs.
type Outcome string

// Outcomes.
const (
	Results  Outcome = "results"
	NoMatch  Outcome = "no_match"
	Refused  Outcome = "refused"
	Help     Outcome = "help"
	NotAUser Outcome = "not_a_crm_user"
	Reauth   Outcome = "needs_reauth"
)

// Answer is the reply to a command.
type Answer struct {
	render.Answer
	// Org is the org the answer is about: the caller's, or when the caller
	// is no CRM user, the first org of the team ("" if it has none).
	Org          string
	Total        int
	UnderstoodAs string
	Refused      bool
	Outcome      Outcome
}

// Service answers commands. Its fields are its dependencies; all are required.
type Service struct {
	Records   *projection.Store
	Users     *crmusers.Directory
	Directory Directory
	Teams     TeamOrgs
	Render    render.Renderer
}

// Answer answers one command. Refusals are answers, not errors; an error
// means the answer could not be given (ErrDependency: try again).
func (s *Service) Answer(ctx context.Context, req Request) (Answer, error) {
	cmd, perr := slash.Parse(req.Text)
	orgs, err := s.orgs(ctx, req)
	if err != nil {
		return Answer{}, err
	}
	first := ""
	if len(orgs) > 0 {
		first = orgs[0]
	}
	if perr == nil && cmd.Kind == slash.KindHelp {
		// The usage card holds no CRM data: anyone may read it.
		return Answer{Answer: render.Help(), Org: first, UnderstoodAs: cmd.Describe(), Outcome: Help}, nil
	}

	org, err := s.caller(ctx, req, orgs)
	if errors.Is(err, ErrNeedsReauth) {
		return Answer{Answer: render.Reconnect(), Org: first, Refused: true, Outcome: Reauth}, nil
	}
	if err != nil {
		return Answer{}, err
	}
	if org == "" {
		return Answer{Answer: render.NotACRMUser(), Org: first, Refused: true, Outcome: NotAUser}, nil
	}
	if perr != nil {
		return Answer{Answer: render.Refusal(perr.Error(), req.Text, ""), Org: org, Refused: true, Outcome: Refused}, nil
	}

	schema, ok := s.Records.Schema(org, cmd.Module)
	if !ok {
		// No record of the module has reached the projection: nothing can
		// match, and its field labels are unknown.
		understood := cmd.Describe()
		return Answer{Answer: render.NoMatch(nil, cmd.Module, understood), Org: org, UnderstoodAs: understood, Outcome: NoMatch}, nil
	}
	q, err := filter.Bind(cmd, schema)
	if err != nil {
		var refusal *filter.RefusalError
		if !errors.As(err, &refusal) {
			return Answer{}, fmt.Errorf("binding %q: %w", req.Text, err)
		}
		understood := cmd.Describe()
		return Answer{Answer: render.Refusal(refusal.Message, req.Text, understood), Org: org, UnderstoodAs: understood, Refused: true, Outcome: Refused}, nil
	}
	res, err := s.Records.Search(org, q, card.MaxListCards)
	if err != nil {
		return Answer{}, fmt.Errorf("searching: %w", err)
	}
	if res.Total == 0 {
		return Answer{Answer: render.NoMatch(schema, cmd.Module, q.Describe()), Org: org, UnderstoodAs: q.Describe(), Outcome: NoMatch}, nil
	}
	to := card.Grant{Ref: card.Ref{Org: org}, Team: req.Team, Channel: req.Channel, User: req.User}
	a, err := s.Render.Results(to, schema, res.Records, res.Total, q.Describe())
	if err != nil {
		return Answer{}, err
	}
	return Answer{Answer: a, Org: org, Total: res.Total, UnderstoodAs: q.Describe(), Outcome: Results}, nil
}

// orgs lists the candidate orgs of the request, sorted.
func (s *Service) orgs(ctx context.Context, req Request) ([]string, error) {
	if req.Org != "" && !strings.HasPrefix(req.Org, "slack:") {
		return []string{req.Org}, nil
	}
	orgs, err := s.Teams.OrgsOfTeam(ctx, req.Team)
	if err != nil {
		return nil, fmt.Errorf("%w: resolving team %s: %w", ErrDependency, req.Team, err)
	}
	orgs = slices.Clone(orgs)
	slices.Sort(orgs)
	return orgs, nil
}

// caller returns the org in which the Slack user is an active CRM user
// (matched by email), the first such org when a team serves several; ""
// when there is none.
func (s *Service) caller(ctx context.Context, req Request, orgs []string) (string, error) {
	if len(orgs) == 0 {
		return "", nil
	}
	u, err := s.Directory.SlackUser(ctx, req.Team, req.User)
	switch {
	case errors.Is(err, ErrUnknownSlackUser):
		return "", nil
	case errors.Is(err, ErrNeedsReauth):
		return "", err
	case err != nil:
		return "", fmt.Errorf("%w: looking up Slack user %s of %s: %w", ErrDependency, req.User, req.Team, err)
	case u.Deleted || u.Email == "":
		return "", nil
	}
	for _, org := range orgs {
		if _, ok := s.Users.Lookup(org, u.Email); ok {
			return org, nil
		}
	}
	return "", nil
}

// Metrics counts and times answers by path (sync, late) and outcome.
type Metrics struct {
	answers  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the answer metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmslack_query_answers_total",
			Help: "Slash-command answers by path (sync, late) and outcome (results, no_match, refused, help, not_a_crm_user, needs_reauth, error).",
		}, []string{"path", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crmslack_query_answer_seconds",
			Help:    "Time to answer a slash command, by path.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"path"}),
	}
	for _, c := range []prometheus.Collector{m.answers, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering answer metrics: %w", err)
		}
	}
	return m, nil
}

// Observe records one answer.
func (m *Metrics) Observe(path string, outcome Outcome, took time.Duration) {
	m.answers.WithLabelValues(path, string(outcome)).Inc()
	m.duration.WithLabelValues(path).Observe(took.Seconds())
}
