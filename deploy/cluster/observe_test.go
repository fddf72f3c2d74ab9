package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/identity"

	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
)

func describeLast(last map[string]time.Time, from time.Time) string {
	var parts []string
	for kind, at := range last {
		parts = append(parts, fmt.Sprintf("%q %s", kind, at.Sub(from).Round(time.Millisecond)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// busiest is the delivery replica that has posted most.
func busiest(t *testing.T, rs []*Replica) *Replica {
	t.Helper()
	var best *Replica
	most := -1.0
	for _, r := range rs {
		if n := metricSum(t, r.Ops, "crmslack_delivery_commands_total"); n > most {
			best, most = r, n
		}
	}
	return best
}

// metricSum adds up a counter's series on a replica's /metrics.
func metricSum(t *testing.T, ops, name string) float64 {
	t.Helper()
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// streamLeader is the index of the node leading stream.
func streamLeader(t *testing.T, c *Cluster, stream string) int {
	t.Helper()
	js := observer(t, c, identity.Delivery)
	st, err := js.Stream(testkit.Context(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	i, err := strconv.Atoi(strings.TrimPrefix(info.Cluster.Leader, "nats-"))
	if err != nil {
		t.Fatalf("leader %q: %v", info.Cluster.Leader, err)
	}
	return i - 1
}

// observer is a JetStream connection as service user (the test reads
// SLACK_OUT as delivery, the only user that may).
func observer(t *testing.T, c *Cluster, user string) jetstream.JetStream {
	t.Helper()
	pw, err := c.PKI().NATSPassword(user)
	if err != nil {
		t.Fatal(err)
	}
	withTLS, err := c.PKI().NATSTLS(user)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(c.NATSURL(), nats.UserInfo(user, pw), withTLS, nats.CustomInboxPrefix(identity.NATSInbox(user)), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// takeover is, by kind of post, the longest any conversation waited from
// at to its first post after it: a conversation whose work a killed
// replica held waits for the survivor to take it, one a survivor served
// waits only for its own pace. Posts already in (seen) do not count.
func takeover(posts []slackstandin.Message, at time.Time, seen map[string]bool) map[string]time.Duration {
	first := map[string]slackstandin.Message{}
	for _, m := range posts {
		if seen[marker(m)] || !m.Time.After(at) {
			continue
		}
		if f, ok := first[m.Channel]; !ok || m.Time.Before(f.Time) {
			first[m.Channel] = m
		}
	}
	out := map[string]time.Duration{}
	for _, m := range first {
		kind := strings.SplitN(marker(m), " ", 2)[0]
		out[kind] = max(out[kind], m.Time.Sub(at))
	}
	return out
}

// stages is, by kind of post, the longest of the posts made after at, split
// where its command was stored on SLACK_OUT: from at (or the event, if
// later published) to the command is its producer's share, from the
// command (or at) to the post delivery's.
func stages(posts []slackstandin.Message, at time.Time, stored map[string]time.Time) (producer, delivery map[string]time.Duration) {
	producer, delivery = map[string]time.Duration{}, map[string]time.Duration{}
	for _, m := range posts {
		cmd, ok := stored[marker(m)]
		if !ok || !m.Time.After(at) {
			continue
		}
		kind := strings.SplitN(marker(m), " ", 2)[0]
		producer[kind] = max(producer[kind], cmd.Sub(at))
		delivery[kind] = max(delivery[kind], m.Time.Sub(later(cmd, at)))
	}
	return producer, delivery
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func describeWaits(w map[string]time.Duration) string {
	var parts []string
	for kind, d := range w {
		parts = append(parts, fmt.Sprintf("%q %s", kind, d.Round(time.Millisecond)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// longestGap is the longest time without a post from at to the last post.
func longestGap(posts []slackstandin.Message, at time.Time) time.Duration {
	times := []time.Time{at}
	for _, m := range posts {
		if m.Time.After(at) {
			times = append(times, m.Time)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var gap time.Duration
	for i := 1; i < len(times); i++ {
		gap = max(gap, times[i].Sub(times[i-1]))
	}
	return gap
}

// standinClient reads what the stand-in recorded, over its HTTP API: it
// runs as a process of its own.
type standinClient struct {
	url string
	mu  sync.Mutex
}

// waitPosts polls (each poll reads every post, so not at testkit's pace)
// until n posts are in, and returns them.
func (s *standinClient) waitPosts(t *testing.T, timeout time.Duration, n int) []slackstandin.Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		posts := s.posts(t)
		if len(posts) >= n {
			return posts
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d posts after %s", len(posts), n, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// posts are the messages the app posted in Acme (not ephemeral, not
// response_url answers).
func (s *standinClient) posts(t *testing.T) []slackstandin.Message {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cl := http.Client{Timeout: 30 * time.Second}
	resp, err := cl.Get(s.url + "/_standin/messages?kind=message&team=" + acme)
	if err != nil {
		t.Logf("stand-in: %v", err)
		return nil
	}
	defer resp.Body.Close()
	var page struct {
		Messages []slackstandin.Message `json:"messages"`
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil || json.Unmarshal(buf.Bytes(), &page) != nil {
		t.Fatalf("stand-in messages: HTTP %d %v: %.200s", resp.StatusCode, err, buf.String())
	}
	return page.Messages
}
