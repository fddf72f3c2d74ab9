package bus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// FollowKeyValue follows every key of kv into memory until ctx ends (then
// nil): each entry, put or delete, goes to apply, and synced is called once
// the values present when the watch began are all in. A broken watch is
// logged (what names the bucket's content) and started over after retry;
// the new watch hands every current value to apply again, so apply must
// take an entry it has seen (a read model keyed by revision does).
func FollowKeyValue(ctx context.Context, kv jetstream.KeyValue, retry time.Duration, log *slog.Logger, what string,
	apply func(jetstream.KeyValueEntry), synced func()) error {
	for {
		err := WatchKeyValue(ctx, kv, apply, synced)
		if ctx.Err() != nil {
			return nil
		}
		log.WarnContext(ctx, "following "+what+"; retrying", "bucket", kv.Bucket(), "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
	}
}

// WatchKeyValue is one watch of [FollowKeyValue]: it returns nil when ctx
// ends and an error when the watch breaks.
func WatchKeyValue(ctx context.Context, kv jetstream.KeyValue, apply func(jetstream.KeyValueEntry), synced func()) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching bucket %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watch of bucket %s ended", kv.Bucket())
			}
			if e == nil { // the initial values have all been delivered
				synced()
				continue
			}
			apply(e)
		}
	}
}
