package mongorepo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/crmslack/crmslack/libs/store"
)

// CollRefreshLeases holds the leases of tokens being refreshed: a refresh
// token is single-use, so one replica at a time may trade it.
const CollRefreshLeases = "refresh_leases"

// A lease is a create-only insert of the next generation of a row's lease
// (_id "<row>/<n>"): a unique _id is the one write FerretDB keeps atomic
// between replicas. Its updates and deletes by a filter are not (two
// replicas can both match, and a delete can remove a document inserted after
// its filter was evaluated), so a lease is never changed, and deleted only
// by its exact _id or as an older generation.
type leaseDoc struct {
	ID     string    `bson:"_id"`
	Row    string    `bson:"row"`
	N      int64     `bson:"n"`
	Holder string    `bson:"holder"`
	Until  time.Time `bson:"until"`
}

// ClaimRefresh takes the refresh lease of row id for holder until until.
// It reports false while another holder's lease is live; a lapsed one (its
// holder died mid-refresh) is taken over by the next generation.
func (r *Repo) ClaimRefresh(ctx context.Context, id, holder string, now, until time.Time) (bool, error) {
	leases := r.leases()
	var latest leaseDoc
	err := leases.FindOne(ctx, bson.D{{Key: "row", Value: id}}, options.FindOne().SetSort(bson.D{{Key: "n", Value: -1}})).Decode(&latest)
	next := int64(0)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
	case err != nil:
		return false, fmt.Errorf("claiming the refresh of %s: %w", id, err)
	case latest.Holder != holder && now.Before(latest.Until):
		return false, nil
	default:
		next = latest.N + 1
	}
	doc := leaseDoc{ID: id + "/" + strconv.FormatInt(next, 10), Row: id, N: next, Holder: holder, Until: until}
	if _, err := leases.InsertOne(ctx, doc); store.IsDuplicate(err) {
		return false, nil // another replica took this generation
	} else if err != nil {
		return false, fmt.Errorf("claiming the refresh of %s: %w", id, err)
	}
	// Older generations are spent; dropping them keeps the collection small.
	_, _ = leases.DeleteMany(ctx, bson.D{{Key: "row", Value: id}, {Key: "n", Value: bson.D{{Key: "$lt", Value: next}}}})
	return true, nil
}

// ReleaseRefresh drops holder's leases of row id.
func (r *Repo) ReleaseRefresh(ctx context.Context, id, holder string) error {
	if _, err := r.leases().DeleteMany(ctx, bson.D{{Key: "row", Value: id}, {Key: "holder", Value: holder}}); err != nil {
		return fmt.Errorf("releasing the refresh of %s: %w", id, err)
	}
	return nil
}

func (r *Repo) leases() *mongo.Collection { return r.teams.Database().Collection(CollRefreshLeases) }
