// Package history keeps the actions' history in MongoDB with inserts only:
// one document per message handed to the egress, per outcome the egress
// reported, per skipped firing and per removal, each under a unique id
// (a replayed event inserts nothing new), joined when read. Firings arrive
// thousands a second and FerretDB inserts about 3,000 documents a second
// one by one but over 30,000 in batches, so Record queues and a few writers
// each insert whatever has queued in one store.InsertAll (group commit: no
// timer, a lone entry is written at once).
package history

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/crmslack/crmslack/libs/store"

	"github.com/crmslack/crmslack/services/workflows/internal/action"
	"github.com/crmslack/crmslack/services/workflows/internal/app"
)

// Collection is the history's collection.
const Collection = "action_history"

// MaxBatch bounds one batched insert.
const MaxBatch = 1000

// Indexes serve production MongoDB's reads: an action's or a rule's
// entries by time, and a message's outcomes. Uniqueness comes from _id.
func Indexes() []store.IndexSpec {
	return []store.IndexSpec{
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "org", Value: 1}, {Key: "action_id", Value: 1}, {Key: "at", Value: -1}}}},
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "org", Value: 1}, {Key: "rule_id", Value: 1}, {Key: "at", Value: -1}}}},
		{Collection: Collection, Model: mongo.IndexModel{Keys: bson.D{{Key: "message_id", Value: 1}}}},
	}
}

type doc struct {
	ID        string    `bson:"_id"`
	Kind      string    `bson:"kind"`
	Org       string    `bson:"org"`
	ActionID  string    `bson:"action_id"`
	RuleID    string    `bson:"rule_id,omitempty"`
	Trigger   string    `bson:"trigger,omitempty"`
	RecordID  string    `bson:"record_id,omitempty"`
	MessageID string    `bson:"message_id,omitempty"`
	Target    string    `bson:"target,omitempty"`
	Permalink string    `bson:"permalink,omitempty"`
	Reason    string    `bson:"reason,omitempty"`
	At        time.Time `bson:"at"`
}

type request struct {
	docs []any
	done chan error
}

// Repo implements app.History. Run must be running for Record to return.
type Repo struct {
	coll  *mongo.Collection
	queue chan request
}

// New returns the repository on db.
func New(db *mongo.Database) *Repo {
	return &Repo{coll: db.Collection(Collection), queue: make(chan request, 4096)}
}

// Record queues entries for the writer and waits until they are stored.
func (r *Repo) Record(ctx context.Context, entries ...action.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	req := request{docs: make([]any, len(entries)), done: make(chan error, 1)}
	for i, e := range entries {
		req.docs[i] = doc{ID: e.ID, Kind: string(e.Kind), Org: e.Org, ActionID: e.ActionID, RuleID: e.RuleID, Trigger: e.TriggerEventID,
			RecordID: e.RecordID, MessageID: e.MessageID, Target: e.Target, Permalink: e.Permalink, Reason: e.Reason, At: e.At.UTC()}
	}
	select {
	case r.queue <- req:
	case <-ctx.Done():
		return fmt.Errorf("recording history: %w", ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("recording history: %w", ctx.Err())
	}
}

// Writers is how many inserts may be in flight at once: while one batch
// is on the wire or being decoded, the next one gathers and is sent.
const Writers = 4

// Run runs the writers until ctx ends.
func (r *Repo) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range Writers {
		wg.Go(func() { r.write(ctx) })
	}
	wg.Wait()
	return nil
}

func (r *Repo) write(ctx context.Context) {
	for {
		var batch []request
		n := 0
		select {
		case <-ctx.Done():
			return
		case req := <-r.queue:
			batch, n = append(batch, req), len(req.docs)
		}
	gather:
		for n < MaxBatch {
			select {
			case req := <-r.queue:
				batch, n = append(batch, req), n+len(req.docs)
			default:
				break gather
			}
		}
		docs := make([]any, 0, n)
		for _, req := range batch {
			docs = append(docs, req.docs...)
		}
		err := r.insert(ctx, docs)
		for _, req := range batch {
			req.done <- err
		}
	}
}

// insert writes docs unordered; duplicates (a replay) are not errors.
func (r *Repo) insert(ctx context.Context, docs []any) error {
	if err := store.InsertAll(ctx, r.coll, docs); err != nil {
		return fmt.Errorf("inserting history: %w", err)
	}
	return nil
}

// List returns an action's or a rule's entries: the newest firings (up to
// what q.Limit executions need) and the outcomes of their messages.
func (r *Repo) List(ctx context.Context, q app.HistoryQuery) ([]action.Entry, error) {
	filter := bson.D{{Key: "org", Value: q.Org}, {Key: "kind", Value: bson.M{"$in": []string{string(action.Sent), string(action.Skipped), string(action.Removed)}}}}
	if q.ActionID != "" {
		filter = append(filter, bson.E{Key: "action_id", Value: q.ActionID})
	} else {
		filter = append(filter, bson.E{Key: "rule_id", Value: q.RuleID})
	}
	limit := int64(q.Limit * (action.MaxTargets + 2))
	firings, err := r.find(ctx, filter, options.Find().SetSort(bson.D{{Key: "at", Value: -1}, {Key: "_id", Value: 1}}).SetLimit(limit))
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range firings {
		if e.MessageID != "" {
			ids = append(ids, e.MessageID)
		}
	}
	if len(ids) == 0 {
		return firings, nil
	}
	outs, err := r.find(ctx, bson.D{{Key: "message_id", Value: bson.M{"$in": ids}}, {Key: "kind", Value: bson.M{"$in": []string{string(action.Posted), string(action.Failed)}}}}, options.Find())
	if err != nil {
		return nil, err
	}
	return append(firings, outs...), nil
}

func (r *Repo) find(ctx context.Context, filter bson.D, opts *options.FindOptionsBuilder) ([]action.Entry, error) {
	cur, err := r.coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("reading history: %w", err)
	}
	var docs []doc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("reading history: %w", err)
	}
	out := make([]action.Entry, len(docs))
	for i, d := range docs {
		out[i] = action.Entry{ID: d.ID, Kind: action.EntryKind(d.Kind), Org: d.Org, ActionID: d.ActionID, RuleID: d.RuleID, TriggerEventID: d.Trigger,
			RecordID: d.RecordID, MessageID: d.MessageID, Target: d.Target, Permalink: d.Permalink, Reason: d.Reason, At: d.At}
	}
	return out, nil
}
