package remote

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"

	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// Records implements app.Records over the query service.
type Records struct {
	c queryv1.QueryServiceClient
}

// NewRecords returns the query service client on cc.
func NewRecords(cc grpc.ClientConnInterface) *Records {
	return &Records{c: queryv1.NewQueryServiceClient(cc)}
}

// Record returns a record and its module's schema.
func (c *Records) Record(ctx context.Context, org, module, id string) (*crmv1.Record, *crmv1.ModuleSchema, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.c.GetRecord(ctx, &queryv1.GetRecordRequest{OrgId: org, Module: module, RecordId: id})
	if status.Code(err) == codes.NotFound {
		return nil, nil, share.Errorf(share.ErrNotFound, "record %s %s is not in org %s (or not yet known to the query service)", module, id, org)
	}
	if err != nil {
		return nil, nil, classify(err, "looking up record "+module+" "+id)
	}
	return resp.GetRecord(), resp.GetSchema(), nil
}

// IsCrmUser says whether email is an active CRM user of org.
func (c *Records) IsCrmUser(ctx context.Context, org, email string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.c.IsCrmUser(ctx, &queryv1.IsCrmUserRequest{OrgId: org, Email: email})
	if err != nil {
		return false, classify(err, "checking a CRM user")
	}
	return resp.GetActive(), nil
}
