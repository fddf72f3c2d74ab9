package devpki

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/crmslack/crmslack/libs/crmauth"
)

// CRMSigner plays the CRM's connector for development tools and tests: for
// each call it signs a fresh credential for the request's org and acting
// user, as the CRM would for the user at its screen. The user is the
// request's caller (a teams Caller: admin per is_admin), or its sharer (a
// user), or else the org's admin connector "crm-connector". An org without a
// key gets one, added to the registry (servers re-read it). A request that
// names no org goes without a credential.
type CRMSigner struct {
	dir *Dir
	ttl time.Duration
	mu  sync.Mutex
}

// NewCRMSigner signs with the CRM keys of d.
func NewCRMSigner(d *Dir) *CRMSigner { return &CRMSigner{dir: d, ttl: 5 * time.Minute} }

// Interceptor adds the credential to every call that has no authorization
// of its own.
func (s *CRMSigner) Interceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		msg, ok := req.(proto.Message)
		if !ok {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		for _, o := range opts {
			if _, own := o.(grpc.PerRPCCredsCallOption); own {
				return invoker(ctx, method, req, reply, cc, opts...)
			}
		}
		c := ClaimsFor(msg)
		if c.Org == "" {
			// No org to speak for: the call goes without a credential, and
			// the server refuses it as the CRM's would be.
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		tok, err := s.Token(c)
		if err != nil {
			return err
		}
		return invoker(ctx, method, req, reply, cc, append(opts, grpc.PerRPCCredentials(crmauth.Bearer(tok)))...)
	}
}

// Token signs c with its org's key, making the key if the org has none.
func (s *CRMSigner) Token(c crmauth.Claims) (string, error) {
	if c.Org == "" {
		return "", fmt.Errorf("devpki: a CRM credential needs an org (the request has no org_id)")
	}
	s.mu.Lock()
	err := s.dir.EnsureCRMOrgs(c.Org)
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	key, err := crmauth.ReadPrivateKey(s.dir.CRMKeyFile(c.Org))
	if err != nil {
		return "", err
	}
	return crmauth.Sign(key, c, time.Now(), s.ttl)
}

// ClaimsFor is the credential the CRM would sign for req.
func ClaimsFor(req proto.Message) crmauth.Claims {
	m := req.ProtoReflect()
	c := crmauth.Claims{Role: crmauth.RoleAdmin}
	c.Subject = "crm-connector"
	fields := m.Descriptor().Fields()
	if fd := fields.ByName("org_id"); fd != nil && fd.Kind() == protoreflect.StringKind {
		c.Org = m.Get(fd).String()
	}
	user := func(u protoreflect.Message) {
		get := func(name protoreflect.Name) string {
			if fd := u.Descriptor().Fields().ByName(name); fd != nil {
				return u.Get(fd).String()
			}
			return ""
		}
		if id := get("id"); id != "" {
			c.Subject = id
		}
		c.Email, c.Name = get("email"), get("name")
		if c.Subject == "crm-connector" && c.Email != "" {
			c.Subject, _, _ = strings.Cut(c.Email, "@")
		}
	}
	// The acting user is the request's teams Caller or CrmUserRef, the
	// fields the server binds to the credential (libs/rpc, authz.go).
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() || !m.Has(fd) {
			continue
		}
		sub := m.Get(fd).Message()
		switch fd.Message().FullName() {
		case "crmslack.teams.v1.Caller":
			if ufd := sub.Descriptor().Fields().ByName("user"); ufd != nil {
				user(sub.Get(ufd).Message())
			}
			if afd := sub.Descriptor().Fields().ByName("is_admin"); afd != nil && !sub.Get(afd).Bool() {
				c.Role = crmauth.RoleUser
			}
		case "crmslack.common.v1.CrmUserRef":
			user(sub)
			c.Role = crmauth.RoleUser
		}
	}
	if fd := fields.ByName("sharer_email"); fd != nil && m.Get(fd).String() != "" {
		c.Email = m.Get(fd).String()
		c.Subject, _, _ = strings.Cut(c.Email, "@")
		c.Role = crmauth.RoleUser
	}
	return c
}
