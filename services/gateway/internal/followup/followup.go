// Package followup makes sure a deferred Slack request ends with a visible
// answer. When the gateway says "Searching…" to a slash command (or acks a
// Share click), the answer is the work of other services: the query
// service or sharing, then the Slack egress. Any of them may be down, and
// Slack shows nothing then. The tracker waits for the egress to report the
// answer delivered (a DeliverySucceeded whose idempotency key is, or
// starts with, the request's event id); if none comes within the deadline,
// it posts a short error to the request's response_url itself. The
// fallback carries no CRM data, only that the answer did not come; the
// real answer may still follow (a response_url takes five replies).
//
// Pending requests live in memory: a gateway restarted mid-wait forgets
// them, and those requests may stay unanswered.
package followup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/responseurl"
	"github.com/crmslack/crmslack/libs/topology"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
)

// DefaultDeadline is how long after the request's arrival the fallback is
// posted: with the post's own time, the user sees a message within 10 s.
const DefaultDeadline = 7 * time.Second

// postTimeout bounds one fallback post.
const postTimeout = 2 * time.Second

// Options configure a Tracker.
type Options struct {
	// Deadline: default DefaultDeadline.
	Deadline time.Duration
	// HTTP posts the fallbacks. Default: a client with postTimeout.
	HTTP *http.Client
	// Replies checks every response_url before a post.
	Replies *responseurl.Policy
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Tracker is safe for concurrent use.
type Tracker struct {
	deadline time.Duration
	hc       *http.Client
	replies  *responseurl.Policy
	log      *slog.Logger
	outcomes *prometheus.CounterVec

	mu      sync.Mutex
	pending map[string]*time.Timer // by event id
	closed  bool
}

// New returns a tracker.
func New(log *slog.Logger, o Options) (*Tracker, error) {
	t := &Tracker{deadline: o.Deadline, hc: o.HTTP, replies: o.Replies, log: log, pending: map[string]*time.Timer{}}
	if t.deadline <= 0 {
		t.deadline = DefaultDeadline
	}
	if t.hc == nil {
		t.hc = &http.Client{Timeout: postTimeout}
	}
	if t.replies == nil {
		t.replies = responseurl.Slack()
	}
	t.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmslack_gateway_followups_total",
		Help: "Deferred Slack requests by how they ended: answered (the egress delivered the answer in time), fallback (the gateway posted an error itself), fallback_failed (and that post failed too).",
	}, []string{"outcome"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(t.outcomes); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Expect starts waiting for the answer to the request with event id id,
// which arrived at since; without one by the deadline, text is posted to
// responseURL as an ephemeral message. Expecting an id already pending
// does nothing.
func (t *Tracker) Expect(id string, since time.Time, responseURL, text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.pending[id] != nil {
		return
	}
	t.pending[id] = time.AfterFunc(t.deadline-time.Since(since), func() { t.fallback(id, responseURL, text) })
}

// Answered stops waiting for id; it reports whether id was pending.
func (t *Tracker) Answered(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	timer := t.pending[id]
	if timer == nil {
		return false
	}
	timer.Stop()
	delete(t.pending, id)
	t.outcomes.WithLabelValues("answered").Inc()
	return true
}

// Pending counts the requests waited for.
func (t *Tracker) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// Delivered handles a DeliverySucceeded: its idempotency key is the
// request's event id, or the id and a suffix ("<id>/respond").
func (t *Tracker) Delivered(data []byte) {
	var ev integrationv1.DeliverySucceeded
	if proto.Unmarshal(data, &ev) != nil {
		return
	}
	key := ev.GetIdempotencyKey()
	if t.Answered(key) {
		return
	}
	if id, _, ok := strings.Cut(key, "/"); ok {
		t.Answered(id)
	}
}

// Run follows the egress's outcomes on nc until ctx ends, then stops every
// pending timer.
func (t *Tracker) Run(ctx context.Context, nc *nats.Conn) error {
	sub, err := nc.Subscribe(topology.Delivery("*", "succeeded"), func(m *nats.Msg) { t.Delivered(m.Data) })
	if err != nil {
		return fmt.Errorf("following delivery outcomes: %w", err)
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for id, timer := range t.pending {
		timer.Stop()
		delete(t.pending, id)
	}
	return nil
}

func (t *Tracker) fallback(id, responseURL, text string) {
	t.mu.Lock()
	if t.pending[id] == nil {
		t.mu.Unlock()
		return // answered meanwhile
	}
	delete(t.pending, id)
	t.mu.Unlock()
	if err := t.Post(context.Background(), responseURL, text); err != nil {
		t.outcomes.WithLabelValues("fallback_failed").Inc()
		t.log.Error("no answer came and the fallback message could not be posted either", "event_id", id, "err", err)
		return
	}
	t.outcomes.WithLabelValues("fallback").Inc()
	t.log.Warn("no answer came in time; told the user", "event_id", id, "deadline", t.deadline)
}

// Post posts text to responseURL as an ephemeral message, once more after
// a failure while time allows.
func (t *Tracker) Post(ctx context.Context, responseURL, text string) error {
	if err := t.replies.Check(responseURL); err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"response_type": "ephemeral", "replace_original": false, "text": text})
	var err error
	for attempt := range 2 {
		if attempt > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		if err = t.post(ctx, responseURL, body); err == nil {
			return nil
		}
	}
	return err
}

func (t *Tracker) post(ctx context.Context, responseURL string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, postTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := t.hc.Do(req)
	if err != nil {
		// Without the URL: a response_url is a credential while it lives.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("posting to the response_url: %w", ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("response_url answered HTTP %d", resp.StatusCode)
	}
	return nil
}
