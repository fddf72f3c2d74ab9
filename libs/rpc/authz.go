package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/crmslack/crmslack/libs/crmauth"
	"github.com/crmslack/crmslack/libs/mtls"
)

// CRMRole is the least role a CRM credential needs for a method.
type CRMRole int

const (
	// CRMNone: the CRM may not call the method.
	CRMNone CRMRole = iota
	// CRMUser: any CRM user of the request's org.
	CRMUser
	// CRMAdmin: an admin of the request's org.
	CRMAdmin
)

// Rule is who may call one method.
type Rule struct {
	// Services are the service identities allowed.
	Services []string
	// AnyService allows every authenticated peer (health, reflection).
	AnyService bool
	// CRM, unless CRMNone, allows the CRM identity with a credential of at
	// least this role for the request's org.
	CRM CRMRole
	// ForCRM are service identities that act for a CRM user (the console):
	// allowed only as the CRM is, each call carrying such a credential,
	// bound to the request the same way.
	ForCRM []string
}

// Peer is the authenticated caller of a call: a service, or the CRM with
// its verified credential.
type Peer struct {
	// Service is the peer's identity (spiffe://crmslack/<Service>).
	Service string
	// CRM is the verified credential when Service is CRM (or acts for it).
	CRM *crmauth.Claims
}

// authorizer enforces Callers.
type authorizer struct {
	table   map[string]Rule
	keys    *crmauth.Keys
	now     func() time.Time
	log     *slog.Logger
	refused *prometheus.CounterVec
	logged  sync.Map // peer+method already logged
}

// refusal is a refused call: its code, the metric's reason and the words.
type refusal struct {
	code   codes.Code
	reason string
	msg    string
}

func (r *refusal) Error() string { return r.msg }

// authorize decides a call; req is nil for streams (checked per message).
func (a *authorizer) authorize(ctx context.Context, method string) (Peer, *refusal) {
	name := mtls.PeerName(ctx)
	if name == "" {
		return Peer{}, &refusal{codes.Unauthenticated, "no_identity", "no verified client certificate"}
	}
	rule, ok := a.table[method]
	if !ok {
		return Peer{Service: name}, &refusal{codes.PermissionDenied, "no_rule", method + " is in no one's authorization table row"}
	}
	if rule.AnyService || slices.Contains(rule.Services, name) {
		return Peer{Service: name}, nil
	}
	if (name != CRM && !slices.Contains(rule.ForCRM, name)) || rule.CRM == CRMNone {
		return Peer{Service: name}, &refusal{codes.PermissionDenied, "not_allowed", fmt.Sprintf("%s may not call %s", name, method)}
	}
	claims, r := a.credential(ctx)
	if r != nil {
		return Peer{Service: name}, r
	}
	if rule.CRM == CRMAdmin && !claims.Admin() {
		return Peer{Service: name}, &refusal{codes.PermissionDenied, "not_admin", fmt.Sprintf("%s needs a CRM admin; the credential's role is %q", method, claims.Role)}
	}
	return Peer{Service: name, CRM: claims}, nil
}

func (a *authorizer) credential(ctx context.Context) (*crmauth.Claims, *refusal) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(crmauth.MetadataKey)
	if len(vals) != 1 {
		return nil, &refusal{codes.Unauthenticated, "no_credential", "the CRM's calls need one authorization: Bearer <credential>"}
	}
	token, ok := crmauth.FromAuthorization(vals[0])
	if !ok {
		return nil, &refusal{codes.Unauthenticated, "no_credential", "authorization must be Bearer <credential>"}
	}
	if a.keys == nil {
		return nil, &refusal{codes.Unauthenticated, "bad_credential", "this server verifies no CRM credentials"}
	}
	claims, err := a.keys.Verify(token, a.now())
	if err != nil {
		return nil, &refusal{codes.Unauthenticated, "bad_credential", err.Error()}
	}
	return claims, nil
}

// refuse counts and logs (once per peer and method) a refusal and returns
// its status.
func (a *authorizer) refuse(ctx context.Context, method string, p Peer, r *refusal) error {
	peerName := p.Service
	if peerName == "" {
		peerName = "unknown"
	}
	a.refused.WithLabelValues(method, peerName, r.reason).Inc()
	if _, seen := a.logged.LoadOrStore(peerName+" "+method+" "+r.reason, struct{}{}); !seen {
		a.log.WarnContext(ctx, "grpc call refused", "method", method, "peer", peerName, "reason", r.reason, "err", r.msg)
	}
	return status.Error(r.code, r.msg)
}

func (a *authorizer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	p, r := a.authorize(ctx, info.FullMethod)
	if r == nil && p.CRM != nil {
		r = bindCaller(req, p.CRM)
	}
	if r != nil {
		return nil, a.refuse(ctx, info.FullMethod, p, r)
	}
	ctx = withPeer(ctx, p)
	return handler(ctx, req)
}

func (a *authorizer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	p, r := a.authorize(ctx, info.FullMethod)
	if r != nil {
		return a.refuse(ctx, info.FullMethod, p, r)
	}
	return handler(srv, &checkedStream{ServerStream: ss, ctx: withPeer(ctx, p), peer: p, a: a, method: info.FullMethod})
}

// checkedStream binds every message a CRM sends to its credential.
type checkedStream struct {
	grpc.ServerStream
	ctx    context.Context
	peer   Peer
	a      *authorizer
	method string
}

func (s *checkedStream) Context() context.Context { return s.ctx }

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if s.peer.CRM != nil {
		if r := bindCaller(m, s.peer.CRM); r != nil {
			return s.a.refuse(s.ctx, s.method, s.peer, r)
		}
	}
	return nil
}

type peerKey struct{}

func withPeer(ctx context.Context, p Peer) context.Context {
	if p.CRM != nil {
		ctx = crmauth.WithClaims(ctx, p.CRM)
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerFrom returns the authenticated caller of a call.
func PeerFrom(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// Message names the caller fields bindCaller knows.
const (
	crmUserRef = "crmslack.common.v1.CrmUserRef"
	adminCall  = "crmslack.teams.v1.Caller"
)

var errMismatch = errors.New("disagrees with the CRM credential")

// bindCaller takes the caller fields of a CRM request from its credential:
// org_id, every CrmUserRef (id, email, name), a teams Caller (user and
// is_admin) and sharer_email. A field already set must agree with the
// credential, or the call is refused; an empty one is filled in. Doing it
// here, on the message's descriptor, keeps it one rule for every service.
func bindCaller(req any, c *crmauth.Claims) *refusal {
	msg, ok := req.(proto.Message)
	if !ok {
		return &refusal{codes.Internal, "not_proto", "request is not a protobuf message"}
	}
	if err := bindMessage(msg.ProtoReflect(), c); err != nil {
		return &refusal{codes.PermissionDenied, "caller_mismatch", err.Error()}
	}
	return nil
}

func bindMessage(m protoreflect.Message, c *crmauth.Claims) error {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.IsList() || fd.IsMap() {
			continue
		}
		switch {
		case fd.Name() == "org_id" && fd.Kind() == protoreflect.StringKind:
			if err := bindString(m, fd, c.Org, false); err != nil {
				return err
			}
		case fd.Name() == "sharer_email" && fd.Kind() == protoreflect.StringKind:
			if err := bindString(m, fd, c.Email, true); err != nil {
				return err
			}
		case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == crmUserRef:
			if err := bindUser(m.Mutable(fd).Message(), c); err != nil {
				return fmt.Errorf("%s: %w", fd.Name(), err)
			}
		case fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() == adminCall:
			if err := bindAdminCaller(m.Mutable(fd).Message(), c); err != nil {
				return fmt.Errorf("%s: %w", fd.Name(), err)
			}
		}
	}
	return nil
}

func bindString(m protoreflect.Message, fd protoreflect.FieldDescriptor, want string, fold bool) error {
	got := m.Get(fd).String()
	switch {
	case got == "":
		if want != "" {
			m.Set(fd, protoreflect.ValueOfString(want))
		}
		return nil
	case got == want, fold && strings.EqualFold(got, want):
		return nil
	}
	return fmt.Errorf("%s %q %w (%q)", fd.Name(), got, errMismatch, want)
}

func bindUser(u protoreflect.Message, c *crmauth.Claims) error {
	fields := u.Descriptor().Fields()
	for _, b := range []struct {
		name protoreflect.Name
		want string
		fold bool
	}{{"id", c.Subject, false}, {"email", c.Email, true}, {"name", c.Name, false}} {
		fd := fields.ByName(b.name)
		if fd == nil {
			continue
		}
		if b.name == "name" {
			// A display name is not an identity: filled in, never refused.
			if u.Get(fd).String() == "" && b.want != "" {
				u.Set(fd, protoreflect.ValueOfString(b.want))
			}
			continue
		}
		if err := bindString(u, fd, b.want, b.fold); err != nil {
			return err
		}
	}
	return nil
}

func bindAdminCaller(m protoreflect.Message, c *crmauth.Claims) error {
	fields := m.Descriptor().Fields()
	if fd := fields.ByName("user"); fd != nil {
		if err := bindUser(m.Mutable(fd).Message(), c); err != nil {
			return fmt.Errorf("user: %w", err)
		}
	}
	if fd := fields.ByName("is_admin"); fd != nil {
		if m.Get(fd).Bool() && !c.Admin() {
			return fmt.Errorf("is_admin %w (role %q)", errMismatch, c.Role)
		}
		m.Set(fd, protoreflect.ValueOfBool(c.Admin()))
	}
	return nil
}
