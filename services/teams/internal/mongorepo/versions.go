package mongorepo

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/crmslack/crmslack/libs/store"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// CollVersions holds, for each row version written after the first, a
// create-only claim "<collection>/<row>/<version>" carrying the whole new
// row. It is what makes a save a compare-and-set on FerretDB: FerretDB
// answers a ReplaceOne by reading the rows its filter matches and then
// writing each by _id alone, so two replicas replacing "version N" can both
// match and the second silently overwrites the first; a unique _id is the
// one write it keeps atomic between replicas (see leaseDoc). The winner of
// version N+1's claim then replaces the row; until it does (or if it died
// first) readers take the row from the claim.
const CollVersions = "row_versions"

// keptVersions is how many of a row's latest claims stay: a claim is needed
// only until the row is surely written past it (a replace caught between
// FerretDB's read and write can land late, once), so a few suffice.
const keptVersions = 3

type versionDoc struct {
	ID      string   `bson:"_id"`
	Coll    string   `bson:"coll"`
	Row     string   `bson:"row"`
	Version int64    `bson:"v"`
	Doc     bson.Raw `bson:"doc"`
}

func versionID(coll, row string, v int64) string {
	return coll + "/" + row + "/" + strconv.FormatInt(v, 10)
}

func (r *Repo) versions() *mongo.Collection { return r.teams.Database().Collection(CollVersions) }

// save stores doc (whose version field is version+1): an insert when
// version is 0, else a claim of version+1 (create-only, so exactly one
// writer of a version wins; the others get registry.ErrConflict) and then
// the row's replace.
func (r *Repo) save(ctx context.Context, coll *mongo.Collection, id string, version int64, doc any) error {
	if version == 0 {
		if _, err := coll.InsertOne(ctx, doc); err != nil {
			if store.IsDuplicate(err) {
				return &registry.Error{Kind: registry.ErrConflict, Msg: "row " + id + " was created concurrently"}
			}
			return err
		}
		return nil
	}
	raw, err := bson.Marshal(doc)
	if err != nil {
		return err
	}
	next := version + 1
	claim := versionDoc{ID: versionID(coll.Name(), id, next), Coll: coll.Name(), Row: id, Version: next, Doc: raw}
	if _, err := r.versions().InsertOne(ctx, claim); store.IsDuplicate(err) {
		return &registry.Error{Kind: registry.ErrConflict, Msg: "row " + id + " changed concurrently"}
	} else if err != nil {
		return err
	}
	// The claim is the commit; the replace brings the row up to it. It
	// matches nothing only if a later version is already written.
	if _, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "version", Value: bson.D{{Key: "$lt", Value: next}}}}, doc); err != nil {
		return fmt.Errorf("version %d is claimed; writing the row: %w", next, err)
	}
	if next-keptVersions > 1 {
		// Spent; a failed delete leaves only a small leftover.
		_, _ = r.versions().DeleteOne(ctx, bson.D{{Key: "_id", Value: versionID(coll.Name(), id, next-keptVersions)}})
	}
	return nil
}

// latest brings *d (a row of coll at version v) up to the latest claimed
// version, so a reader never sees a version its writer claimed but did not
// (yet) write to the row. decode fills *d from a claim.
func (r *Repo) latest(ctx context.Context, coll, id string, v int64, decode func(bson.Raw) error) error {
	for {
		var c versionDoc
		err := r.versions().FindOne(ctx, bson.D{{Key: "_id", Value: versionID(coll, id, v+1)}}).Decode(&c)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading version %d of %s: %w", v+1, id, err)
		}
		if err := decode(c.Doc); err != nil {
			return fmt.Errorf("version %d of %s: %w", v+1, id, err)
		}
		v++
	}
}

// catchUp writes to coll every row a claim is ahead of, in version order,
// so that queries by a field (dirty rows, rotating teams) see what was
// claimed: a writer that died between claim and replace leaves no row
// behind for long.
func (r *Repo) catchUp(ctx context.Context, coll *mongo.Collection) error {
	cur, err := r.versions().Find(ctx, bson.D{{Key: "coll", Value: coll.Name()}})
	if err != nil {
		return fmt.Errorf("finding versions of %s: %w", coll.Name(), err)
	}
	var claims []versionDoc
	if err := cur.All(ctx, &claims); err != nil {
		return fmt.Errorf("reading versions of %s: %w", coll.Name(), err)
	}
	newest := map[string]versionDoc{}
	for _, c := range claims {
		if c.Version > newest[c.Row].Version {
			newest[c.Row] = c
		}
	}
	for row, c := range newest {
		var have struct {
			Version int64 `bson:"version"`
		}
		err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: row}}).Decode(&have)
		if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
			return fmt.Errorf("catching up %s: %w", row, err)
		}
		if err != nil || have.Version >= c.Version {
			continue
		}
		// The row is behind: its newest claim, with every claim between
		// applied (a claim holds the whole row, so the newest is enough).
		if _, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: row}, {Key: "version", Value: bson.D{{Key: "$lt", Value: c.Version}}}}, c.Doc); err != nil {
			return fmt.Errorf("catching up %s to version %d: %w", row, c.Version, err)
		}
	}
	return nil
}
