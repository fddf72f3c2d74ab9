// Package prefs keeps users' reminder preferences: MongoDB is their
// record (one small document per user who ever chose), the
// reminder_preferences key-value bucket mirrors it, and every replica
// follows the bucket in memory ([View]) so a fired reminder checks its
// user's choice without a network call.
package prefs

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/store"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
)

// Collection is the preferences' collection.
const Collection = "preferences"

type doc struct {
	ID        string    `bson:"_id"`
	Org       string    `bson:"org"`
	UserID    string    `bson:"user_id"`
	Name      string    `bson:"name,omitempty"`
	Email     string    `bson:"email,omitempty"`
	Enabled   bool      `bson:"enabled"`
	TeamID    string    `bson:"team_id,omitempty"`
	TimeZone  string    `bson:"time_zone,omitempty"`
	UpdatedAt time.Time `bson:"updated_at"`
}

func toDoc(p *remindersv1.Preferences) doc {
	return doc{
		ID: p.GetOrgId() + "/" + p.GetUser().GetId(), Org: p.GetOrgId(), UserID: p.GetUser().GetId(),
		Name: p.GetUser().GetName(), Email: p.GetUser().GetEmail(), Enabled: p.GetEnabled(),
		TeamID: p.GetTeamId(), TimeZone: p.GetTimeZone(), UpdatedAt: p.GetUpdatedAt().AsTime(),
	}
}

func (d doc) proto() *remindersv1.Preferences {
	return &remindersv1.Preferences{
		OrgId: d.Org, User: &commonv1.CrmUserRef{Id: d.UserID, Name: d.Name, Email: d.Email},
		Enabled: d.Enabled, TeamId: d.TeamID, TimeZone: d.TimeZone, UpdatedAt: timestamppb.New(d.UpdatedAt),
	}
}

// BucketConfig is the mirror bucket: the latest preferences per user.
func BucketConfig(replicas int, storage jetstream.StorageType) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      topology.BucketReminderPreferences,
		Description: "reminders.v1.Preferences per <org>.<crm user id>, mirrored from MongoDB",
		History:     1,
		Replicas:    max(replicas, 1),
		Storage:     storage,
	}
}

// Store writes preferences to MongoDB and the bucket.
type Store struct {
	coll *mongo.Collection
	kv   jetstream.KeyValue
}

// New binds the store; the bucket is created or updated.
func New(ctx context.Context, db *mongo.Database, js jetstream.JetStream, replicas int, storage jetstream.StorageType) (*Store, error) {
	kv, err := bus.BindKeyValue(ctx, js, BucketConfig(replicas, storage))
	if err != nil {
		return nil, fmt.Errorf("ensuring bucket %s: %w", topology.BucketReminderPreferences, err)
	}
	return &Store{coll: db.Collection(Collection), kv: kv}, nil
}

// KV is the mirror bucket, for [Follow].
func (s *Store) KV() jetstream.KeyValue { return s.kv }

// Key is a user's key in the bucket.
func Key(org, user string) (string, error) {
	for _, t := range []string{org, user} {
		if _, err := topology.Token(t); err != nil {
			return "", err
		}
	}
	return org + "." + user, nil
}

// Save records p in MongoDB, then in the bucket. A first choice is a
// create-only insert; a change replaces the user's one document.
func (s *Store) Save(ctx context.Context, p *remindersv1.Preferences) error {
	k, err := Key(p.GetOrgId(), p.GetUser().GetId())
	if err != nil {
		return err
	}
	d := toDoc(p)
	if _, err := s.coll.InsertOne(ctx, d); err != nil {
		if !store.IsDuplicate(err) {
			return fmt.Errorf("saving preferences %s: %w", d.ID, err)
		}
		if _, err := s.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}}, d); err != nil {
			return fmt.Errorf("saving preferences %s: %w", d.ID, err)
		}
	}
	return s.mirror(ctx, k, p)
}

func (s *Store) mirror(ctx context.Context, k string, p *remindersv1.Preferences) error {
	data, err := proto.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding preferences %s: %w", k, err)
	}
	if _, err := s.kv.Put(ctx, k, data); err != nil {
		return fmt.Errorf("mirroring preferences %s: %w", k, err)
	}
	return nil
}

// Sync writes every stored preference the bucket lacks or holds older, so
// a lost or new bucket is right again; it runs at start-up.
func (s *Store) Sync(ctx context.Context, have func(org, user string) (*remindersv1.Preferences, bool)) (int, error) {
	cur, err := s.coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(1000))
	if err != nil {
		return 0, fmt.Errorf("reading preferences: %w", err)
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	n := 0
	for cur.Next(ctx) {
		var d doc
		if err := cur.Decode(&d); err != nil {
			return n, fmt.Errorf("decoding preferences: %w", err)
		}
		if p, ok := have(d.Org, d.UserID); ok && !p.GetUpdatedAt().AsTime().Before(d.UpdatedAt) {
			continue
		}
		k, err := Key(d.Org, d.UserID)
		if err != nil {
			continue
		}
		if err := s.mirror(ctx, k, d.proto()); err != nil {
			return n, err
		}
		n++
	}
	return n, cur.Err()
}

// View is every user's preferences in memory, safe for concurrent use.
type View struct {
	mu     sync.RWMutex
	users  map[string]*remindersv1.Preferences
	synced atomic.Bool
}

// NewView returns an empty view; Follow fills it.
func NewView() *View { return &View{users: map[string]*remindersv1.Preferences{}} }

// Get returns a user's preferences; false for a user who never chose.
func (v *View) Get(org, user string) (*remindersv1.Preferences, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	p, ok := v.users[org+"."+user]
	return p, ok
}

// Enabled reports whether a user has reminders on.
func (v *View) Enabled(org, user string) bool {
	p, ok := v.Get(org, user)
	return ok && p.GetEnabled()
}

// Set records preferences at once (the replica that saved them need not
// wait for its own watch); an older value never replaces a newer one.
func (v *View) Set(p *remindersv1.Preferences) {
	k := p.GetOrgId() + "." + p.GetUser().GetId()
	v.mu.Lock()
	defer v.mu.Unlock()
	if old, ok := v.users[k]; ok && old.GetUpdatedAt().AsTime().After(p.GetUpdatedAt().AsTime()) {
		return
	}
	v.users[k] = p
}

// Synced reports whether the bucket's values present at start are in.
func (v *View) Synced() bool { return v.synced.Load() }

// Follow watches the bucket into v until ctx ends, starting over after a
// broken watch.
func Follow(ctx context.Context, kv jetstream.KeyValue, v *View, log *slog.Logger) error {
	return bus.FollowKeyValue(ctx, kv, time.Second, log, "reminder preferences", func(e jetstream.KeyValueEntry) {
		if e.Operation() != jetstream.KeyValuePut {
			return
		}
		var p remindersv1.Preferences
		if err := proto.Unmarshal(e.Value(), &p); err != nil {
			log.WarnContext(ctx, "undecodable reminder preferences; ignored", "key", e.Key(), "err", err)
			return
		}
		v.Set(&p)
	}, func() { v.synced.Store(true) })
}
