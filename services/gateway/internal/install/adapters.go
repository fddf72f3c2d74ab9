package install

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/slack-go/slack"
)

// NonceBucket is the gateway's key-value bucket of used tickets and
// states. Entries expire after NonceTTL, longer than any ticket or state
// lives, so the bucket stays small.
const NonceBucket = "gateway_oauth_nonces"

// NonceTTL outlives every ticket and state (10 minutes each).
const NonceTTL = 30 * time.Minute

// NonceStore uses a key up with a create-only write: JetStream refuses a
// second Create of a key, on any replica.
type NonceStore struct{ kv jetstream.KeyValue }

// EnsureNonceStore creates or updates the bucket.
func EnsureNonceStore(ctx context.Context, js jetstream.JetStream, replicas int) (*NonceStore, error) {
	kv, err := bus.BindKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      NonceBucket,
		Description: "Used OAuth install tickets and states (single use)",
		History:     1,
		TTL:         NonceTTL,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("ensuring bucket %s: %w", NonceBucket, err)
	}
	return &NonceStore{kv: kv}, nil
}

// Consume reports whether key was unused, and marks it used.
func (n *NonceStore) Consume(ctx context.Context, key string) (bool, error) {
	_, err := n.kv.Create(ctx, key, []byte{1})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil
	}
	return false, fmt.Errorf("recording %s: %w", NonceBucket, err)
}

// SlackOAuth exchanges codes with slack-go against the configured API URL.
type SlackOAuth struct {
	APIURL       string
	ClientID     string
	ClientSecret string
	HTTP         *http.Client
}

// Exchange calls oauth.v2.access with the code.
func (s SlackOAuth) Exchange(ctx context.Context, code, redirectURI string) (*slack.OAuthV2Response, error) {
	return slack.GetOAuthV2ResponseContext(ctx, s.HTTP, s.ClientID, s.ClientSecret, code, redirectURI, slack.OAuthOptionAPIURL(s.APIURL))
}

// Domain asks auth.test for the workspace URL and returns its subdomain.
func (s SlackOAuth) Domain(ctx context.Context, botToken string) string {
	resp, err := slack.New(botToken, slack.OptionAPIURL(s.APIURL), slack.OptionHTTPClient(s.HTTP)).AuthTestContext(ctx)
	if err != nil {
		return ""
	}
	u, err := url.Parse(resp.URL)
	if err != nil {
		return ""
	}
	host, _, _ := strings.Cut(u.Hostname(), ".")
	return host
}
