package bus

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
)

// BindKeyValue creates the bucket cfg describes, or updates it to cfg,
// repeating the request as a stream's creation is (DefaultAPIAttempts of
// DefaultAPIAttemptTimeout each) while JetStream does not answer or answers
// that it is unavailable: a service started while a cluster forms or elects
// a leader starts once it can.
func BindKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	r := retrying{attempts: DefaultAPIAttempts, timeout: DefaultAPIAttemptTimeout, log: slog.Default()}
	kv, err := createWithRetry(ctx, r, "bucket "+cfg.Bucket, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, cfg)
	})
	if err != nil {
		return nil, fmt.Errorf("binding bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}
