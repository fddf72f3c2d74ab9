// Package mongorepo records shares and their delivery outcomes in MongoDB
// with inserts only: a share is one document under its unique id, written
// once; each delivery outcome is another document under the outcome
// event's id, joined to its share at read time. Nothing is read before a
// write and nothing is updated, so the embedded FerretDB (which scans a
// whole collection for every read or update) only pays on ListShares, an
// audit query, never on the sharing path.
package mongorepo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/crmslack/crmslack/libs/store"

	"github.com/crmslack/crmslack/services/sharing/internal/app"
	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// Collections.
const (
	Shares   = "shares"
	Outcomes = "share_outcomes"
)

// Indexes are for production MongoDB's ListShares: an org's shares by
// time, and a share's outcomes. Uniqueness comes from _id.
func Indexes() []store.IndexSpec {
	return []store.IndexSpec{
		{Collection: Shares, Model: mongo.IndexModel{Keys: bson.D{{Key: "org", Value: 1}, {Key: "shared_at", Value: -1}, {Key: "_id", Value: -1}}}},
		{Collection: Outcomes, Model: mongo.IndexModel{Keys: bson.D{{Key: "share_id", Value: 1}}}},
	}
}

// Repo implements app.Repo.
type Repo struct {
	shares, outcomes *mongo.Collection
}

// New returns the repository on db.
func New(db *mongo.Database) *Repo {
	return &Repo{shares: db.Collection(Shares), outcomes: db.Collection(Outcomes)}
}

type shareDoc struct {
	ID              string    `bson:"_id"`
	Org             string    `bson:"org"`
	Kind            string    `bson:"kind"`
	What            string    `bson:"what,omitempty"`
	Module          string    `bson:"module,omitempty"`
	RecordID        string    `bson:"record_id,omitempty"`
	Team            string    `bson:"team,omitempty"`
	TargetKind      string    `bson:"target_kind,omitempty"`
	Targets         []string  `bson:"targets,omitempty"`
	SharerID        string    `bson:"sharer_id,omitempty"`
	SharerName      string    `bson:"sharer_name,omitempty"`
	SharerEmail     string    `bson:"sharer_email,omitempty"`
	SharerSlackUser string    `bson:"sharer_slack_user,omitempty"`
	Via             string    `bson:"via"`
	SharedAt        time.Time `bson:"shared_at"`
	Refused         bool      `bson:"refused,omitempty"`
	Reason          string    `bson:"reason,omitempty"`
	Commands        []string  `bson:"commands,omitempty"`
	Fingerprint     string    `bson:"fingerprint,omitempty"`
}

func toDoc(s share.Share) shareDoc {
	return shareDoc{
		ID: s.ID, Org: s.Org, Kind: s.Kind, What: s.What, Module: s.Module, RecordID: s.RecordID, Team: s.Team,
		TargetKind: string(s.TargetKind), Targets: s.Targets, SharerID: s.Sharer.ID, SharerName: s.Sharer.Name,
		SharerEmail: s.Sharer.Email, SharerSlackUser: s.SharerSlackUser, Via: s.Via, SharedAt: s.SharedAt.UTC(),
		Refused: s.Refused, Reason: s.Reason, Commands: s.Commands, Fingerprint: s.Fingerprint,
	}
}

func (d shareDoc) share() share.Share {
	return share.Share{
		ID: d.ID, Org: d.Org, Kind: d.Kind, What: d.What, Module: d.Module, RecordID: d.RecordID, Team: d.Team,
		TargetKind: share.TargetKind(d.TargetKind), Targets: d.Targets,
		Sharer:          share.Person{ID: d.SharerID, Name: d.SharerName, Email: d.SharerEmail},
		SharerSlackUser: d.SharerSlackUser, Via: d.Via, SharedAt: d.SharedAt.UTC(), Refused: d.Refused, Reason: d.Reason,
		Commands: d.Commands, Fingerprint: d.Fingerprint,
	}
}

type outcomeDoc struct {
	ID        string    `bson:"_id"`
	ShareID   string    `bson:"share_id"`
	CommandID string    `bson:"command_id"`
	Delivered bool      `bson:"delivered"`
	Unsent    bool      `bson:"unsent,omitempty"`
	Reason    string    `bson:"reason,omitempty"`
	Channel   string    `bson:"channel,omitempty"`
	At        time.Time `bson:"at"`
}

// Create inserts a share; a taken id is not an error (created is false).
func (r *Repo) Create(ctx context.Context, s share.Share) (bool, error) {
	if _, err := r.shares.InsertOne(ctx, toDoc(s)); err != nil {
		if store.IsDuplicate(err) {
			return false, nil
		}
		return false, fmt.Errorf("inserting share %s: %w", s.ID, err)
	}
	return true, nil
}

// Get reads one share. It is called only when Create found the id taken
// (a retried request), never on the first attempt.
func (r *Repo) Get(ctx context.Context, id string) (share.Share, bool, error) {
	var d shareDoc
	err := r.shares.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return share.Share{}, false, nil
	}
	if err != nil {
		return share.Share{}, false, fmt.Errorf("reading share %s: %w", id, err)
	}
	return d.share(), true, nil
}

// AddOutcomes inserts outcomes; duplicates (a redelivered event) are
// skipped.
func (r *Repo) AddOutcomes(ctx context.Context, outs ...share.Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	docs := make([]any, len(outs))
	for i, o := range outs {
		docs[i] = outcomeDoc{ID: o.ID, ShareID: o.ShareID, CommandID: o.CommandID, Delivered: o.Delivered, Unsent: o.Unsent,
			Reason: o.Reason, Channel: o.Channel, At: o.At.UTC()}
	}
	if err := store.InsertAll(ctx, r.outcomes, docs); err != nil {
		return fmt.Errorf("inserting %d share outcomes: %w", len(outs), err)
	}
	return nil
}

// List returns an org's shares, newest first.
func (r *Repo) List(ctx context.Context, q app.ListQuery) ([]share.Share, error) {
	and := bson.A{bson.D{{Key: "org", Value: q.Org}}}
	if !q.From.IsZero() {
		and = append(and, bson.D{{Key: "shared_at", Value: bson.D{{Key: "$gte", Value: q.From.UTC()}}}})
	}
	if !q.To.IsZero() {
		and = append(and, bson.D{{Key: "shared_at", Value: bson.D{{Key: "$lt", Value: q.To.UTC()}}}})
	}
	if q.SharerID != "" {
		and = append(and, bson.D{{Key: "sharer_id", Value: q.SharerID}})
	}
	if !q.AfterAt.IsZero() {
		and = append(and, bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "shared_at", Value: bson.D{{Key: "$lt", Value: q.AfterAt.UTC()}}}},
			bson.D{{Key: "shared_at", Value: q.AfterAt.UTC()}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: q.AfterID}}}},
		}}})
	}
	opts := options.Find().SetSort(bson.D{{Key: "shared_at", Value: -1}, {Key: "_id", Value: -1}}).SetLimit(int64(q.Limit))
	cur, err := r.shares.Find(ctx, bson.D{{Key: "$and", Value: and}}, opts)
	if err != nil {
		return nil, fmt.Errorf("listing shares of %s: %w", q.Org, err)
	}
	var docs []shareDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("reading shares of %s: %w", q.Org, err)
	}
	out := make([]share.Share, len(docs))
	for i, d := range docs {
		out[i] = d.share()
	}
	return out, nil
}

// Outcomes returns the outcomes of the given shares.
func (r *Repo) Outcomes(ctx context.Context, shareIDs []string) ([]share.Outcome, error) {
	cur, err := r.outcomes.Find(ctx, bson.D{{Key: "share_id", Value: bson.D{{Key: "$in", Value: shareIDs}}}})
	if err != nil {
		return nil, fmt.Errorf("listing share outcomes: %w", err)
	}
	var docs []outcomeDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("reading share outcomes: %w", err)
	}
	out := make([]share.Outcome, len(docs))
	for i, d := range docs {
		out[i] = share.Outcome{ID: d.ID, ShareID: d.ShareID, CommandID: d.CommandID, Delivered: d.Delivered, Unsent: d.Unsent,
			Reason: d.Reason, Channel: d.Channel, At: d.At.UTC()}
	}
	return out, nil
}
