package mongorepo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/crmslack/crmslack/libs/store"
)

// CollRefreshLeases holds one document per token being refreshed: a refresh
// token is single-use, so one replica at a time may trade it.
const CollRefreshLeases = "refresh_leases"

// A lease is taken by a create-only insert, whose unique _id is the one
// write FerretDB keeps atomic between replicas (its update by a filter on a
// version is not: two replicas can both match), and dropped by a delete.
type leaseDoc struct {
	ID     string    `bson:"_id"`
	Holder string    `bson:"holder"`
	Until  time.Time `bson:"until"`
}

// ClaimRefresh takes the refresh lease of row id for holder until until.
// It reports false while another holder's lease is live; a lapsed one (its
// holder died mid-refresh) is taken over.
func (r *Repo) ClaimRefresh(ctx context.Context, id, holder string, now, until time.Time) (bool, error) {
	leases := r.teams.Database().Collection(CollRefreshLeases)
	for range 2 {
		_, err := leases.InsertOne(ctx, leaseDoc{ID: id, Holder: holder, Until: until})
		if err == nil {
			return true, nil
		}
		if !store.IsDuplicate(err) {
			return false, fmt.Errorf("claiming the refresh of %s: %w", id, err)
		}
		var cur leaseDoc
		err = leases.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&cur)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // released meanwhile
		}
		if err != nil {
			return false, fmt.Errorf("claiming the refresh of %s: %w", id, err)
		}
		if cur.Holder != holder && now.Before(cur.Until) {
			return false, nil
		}
		// Lapsed, or ours from an attempt that did not release it: drop
		// exactly that lease and insert again; a racing replica's insert
		// wins or loses on the unique _id.
		if _, err := leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "holder", Value: cur.Holder}, {Key: "until", Value: cur.Until}}); err != nil {
			return false, fmt.Errorf("taking over the refresh of %s: %w", id, err)
		}
	}
	return false, nil
}

// ReleaseRefresh drops holder's lease of row id, if it still holds it.
func (r *Repo) ReleaseRefresh(ctx context.Context, id, holder string) error {
	leases := r.teams.Database().Collection(CollRefreshLeases)
	if _, err := leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "holder", Value: holder}}); err != nil {
		return fmt.Errorf("releasing the refresh of %s: %w", id, err)
	}
	return nil
}
