// Package deadletters is the egress's dead-letter API (DeadLetterService):
// the SLACK_OUT commands its consumers gave up on, as libs/bus stored them
// in the DLQ stream, listed per org, one sent back to SLACK_OUT or removed.
package deadletters

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/fault"
	"github.com/crmslack/crmslack/libs/topology"
	deliveryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/delivery/v1"
)

// Limits of a listing: the default and largest page, and how many of the
// newest dead letters (of every stream) one listing reads at most.
const (
	defaultLimit = 50
	maxLimit     = 500
	maxScan      = 10_000
)

// subjects are the egress's dead letters: dlq.SLACK_OUT.<durable>.
var subjects = bus.DeadLetterSubject(topology.StreamSlackOut, ">")

// Server serves DeadLetterService on the DLQ stream.
type Server struct {
	deliveryv1.UnimplementedDeadLetterServiceServer
	js jetstream.JetStream
}

// NewServer reads and replays through js.
func NewServer(js jetstream.JetStream) *Server { return &Server{js: js} }

// command is what a dead letter's headers say of the command.
type command struct {
	subject, org, team, kind string
}

// commandOf parses the original subject slack.out.v1.<org>.<team>.<kind>
// (and the stream's partition token, if stored with it).
func commandOf(m *jetstream.RawStreamMsg) (command, bool) {
	if !strings.HasPrefix(m.Subject, bus.DeadLetterSubjectPrefix+"."+topology.StreamSlackOut+".") {
		return command{}, false
	}
	subj := m.Header.Get(bus.HeaderDLQSubject)
	p := strings.Split(subj, ".")
	if len(p) < 6 || len(p) > 7 || p[0] != "slack" || p[1] != "out" || p[2] != "v1" {
		return command{}, false
	}
	return command{subject: strings.Join(p[:6], "."), org: p[3], team: p[4], kind: p[5]}, true
}

func (s *Server) ListDeadLetters(ctx context.Context, req *deliveryv1.ListDeadLettersRequest) (*deliveryv1.ListDeadLettersResponse, error) {
	if req.GetOrgId() == "" {
		return nil, fault.Errorf(fault.Invalid, "org_id is required")
	}
	limit := int(req.GetLimit())
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	st, err := s.js.Stream(ctx, bus.DeadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return &deliveryv1.ListDeadLettersResponse{}, nil
	}
	if err != nil {
		return nil, fault.Errorf(fault.Unavailable, "reading the dead letters: %v", err)
	}
	info := st.CachedInfo().State
	seq := info.FirstSeq
	if info.LastSeq > maxScan && info.LastSeq-maxScan > seq {
		seq = info.LastSeq - maxScan
	}
	var out []*deliveryv1.DeadLetter
	for seq <= info.LastSeq && seq > 0 {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subjects))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fault.Errorf(fault.Unavailable, "reading dead letter %d: %v", seq, err)
		}
		seq = m.Sequence + 1
		if c, ok := commandOf(m); ok && c.org == req.GetOrgId() {
			out = append(out, letter(m, c))
		}
	}
	slices.Reverse(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return &deliveryv1.ListDeadLettersResponse{DeadLetters: out}, nil
}

func letter(m *jetstream.RawStreamMsg, c command) *deliveryv1.DeadLetter {
	n, _ := strconv.ParseUint(m.Header.Get(bus.HeaderDLQDeliveries), 10, 32)
	return &deliveryv1.DeadLetter{
		Sequence: m.Sequence, OrgId: c.org, TeamId: c.team, Kind: c.kind, Subject: c.subject,
		Reason: m.Header.Get(bus.HeaderDLQReason), Deliveries: uint32(n), DeadLetteredAt: timestamppb.New(m.Time),
		CommandId: m.Header.Get(bus.HeaderDLQOriginalMsgID),
	}
}

func (s *Server) ReplayDeadLetter(ctx context.Context, req *deliveryv1.ReplayDeadLetterRequest) (*deliveryv1.ReplayDeadLetterResponse, error) {
	_, m, c, err := s.find(ctx, req.GetOrgId(), req.GetSequence())
	if err != nil {
		return nil, err
	}
	// The command's own headers; not the dead letter's, nor the server's
	// (Nats-Msg-Id, Nats-Expected-Stream of the dead-letter publish, …).
	h := nats.Header{}
	for k, v := range m.Header {
		if !strings.HasPrefix(k, "Crmslack-Dlq-") && !strings.HasPrefix(k, "Nats-") {
			h[k] = slices.Clone(v)
		}
	}
	// A replay of its own id: the original's would be dropped as a
	// duplicate inside the stream's window, and a second click on the same
	// dead letter is.
	h.Set(bus.HeaderMsgID, "replay:"+strconv.FormatUint(m.Sequence, 10))
	ack, err := s.js.PublishMsg(ctx, &nats.Msg{Subject: c.subject, Header: h, Data: m.Data})
	if err != nil {
		return nil, fault.Errorf(fault.Unavailable, "replaying dead letter %d: %v", m.Sequence, err)
	}
	if ack.Duplicate {
		return nil, fault.Errorf(fault.Exists, "dead letter %d was already replayed a moment ago", m.Sequence)
	}
	return &deliveryv1.ReplayDeadLetterResponse{Subject: c.subject}, nil
}

func (s *Server) DiscardDeadLetter(ctx context.Context, req *deliveryv1.DiscardDeadLetterRequest) (*deliveryv1.DiscardDeadLetterResponse, error) {
	st, m, _, err := s.find(ctx, req.GetOrgId(), req.GetSequence())
	if err != nil {
		return nil, err
	}
	err = st.DeleteMsg(ctx, m.Sequence)
	switch {
	case errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && strings.Contains(err.Error(), "no message found"):
		// Discarded by another click between the read and the delete
		// (nats.go keeps the server's reason as text only).
		return nil, fault.Errorf(fault.NotFound, "org %s has no dead letter %d", req.GetOrgId(), req.GetSequence())
	case err != nil:
		return nil, fault.Errorf(fault.Unavailable, "discarding dead letter %d: %v", m.Sequence, err)
	}
	return &deliveryv1.DiscardDeadLetterResponse{}, nil
}

// find reads org's dead letter seq; another org's is "not found", as one
// that never was.
func (s *Server) find(ctx context.Context, org string, seq uint64) (jetstream.Stream, *jetstream.RawStreamMsg, command, error) {
	if org == "" || seq == 0 {
		return nil, nil, command{}, fault.Errorf(fault.Invalid, "org_id and sequence are required")
	}
	st, err := s.js.Stream(ctx, bus.DeadLetterStream)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, command{}, fault.Errorf(fault.Unavailable, "reading the dead letters: %v", err)
	}
	var m *jetstream.RawStreamMsg
	if err == nil {
		m, err = st.GetMsg(ctx, seq)
	}
	var c command
	ok := false
	if err == nil {
		c, ok = commandOf(m)
	}
	switch {
	case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, nil, command{}, fault.Errorf(fault.Unavailable, "reading dead letter %d: %v", seq, err)
	case !ok || c.org != org:
		return nil, nil, command{}, fault.Errorf(fault.NotFound, "org %s has no dead letter %d", org, seq)
	}
	return st, m, c, nil
}
