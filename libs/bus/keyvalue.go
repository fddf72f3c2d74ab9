package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// BindKeyValue creates the bucket cfg describes, or updates it to cfg.
func BindKeyValue(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("binding bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}
