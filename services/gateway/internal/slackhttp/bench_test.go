package slackhttp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"

	"github.com/crmslack/crmslack/services/gateway/internal/verify"
)

// slashBody is a slash command as Slack sends it (~450 bytes), with a
// trigger id unique to i.
func slashBody(i int) []byte {
	return []byte(url.Values{
		"token": {"gIkuvaNzQIHg97ATvDxqgjtO"}, "team_id": {"T0ACME0001"}, "team_domain": {"acme-corp"},
		"channel_id": {"C0ACMESALE"}, "channel_name": {"sales"}, "user_id": {"U0ACME0BOB"}, "user_name": {"bob"},
		"command": {"/zcrm"}, "text": {"leads [last name]=[watson] [lead source]=[tradeshow]"},
		"api_app_id": {"A0CRMSLACK1"}, "is_enterprise_install": {"false"},
		"response_url": {"https://hooks.slack.com/commands/T0ACME0001/1234567890123/abcdefghijklmnopqrstuvwx"},
		"trigger_id":   {fmt.Sprintf("%013d.738474920.8088930838d88f008e0", i)},
	}.Encode())
}

type signedReq struct {
	body      []byte
	timestamp string
	signature string
}

func signAll(n int, now time.Time) []signedReq {
	out := make([]signedReq, n)
	ts := now.Unix()
	for i := range out {
		body := slashBody(i)
		out[i] = signedReq{body: body, timestamp: strconv.FormatInt(ts, 10), signature: verify.Sign(secret, ts, body)}
	}
	return out
}

// latencies gathers per-request durations from parallel workers.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	p := func(q float64) float64 {
		return float64(l.all[min(len(l.all)-1, int(q*float64(len(l.all))))].Microseconds())
	}
	b.ReportMetric(p(0.50), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, string, bus.Event) error { return nil }

// BenchmarkVerifyAndAck measures the gateway's Slack path for slash-command
// sized requests: signature check on the raw body, parse, team look-up,
// publish, 200.
//
//   - inprocess: the handler called directly, publish a no-op: the cost of
//     verification and acknowledgement alone.
//   - loopback-nats: a real HTTP server on loopback, publishing each command
//     to JetStream (embedded nats-server, file storage) and waiting for the
//     stream's ack before answering, as in production; 16 concurrent
//     clients with keep-alive.
func BenchmarkVerifyAndAck(b *testing.B) {
	b.Run("inprocess", func(b *testing.B) {
		now := time.Now()
		h := newHandler(b, nopPublisher{}, now)
		reqs := signAll(1024, now)
		var lat latencies
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			local := make([]time.Duration, 0, 1024)
			i := 0
			for pb.Next() {
				sr := reqs[i%len(reqs)]
				i++
				r := httptest.NewRequest(http.MethodPost, "/slack/commands", bytes.NewReader(sr.body))
				r.Header.Set(verify.HeaderTimestamp, sr.timestamp)
				r.Header.Set(verify.HeaderSignature, sr.signature)
				w := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(w, r)
				local = append(local, time.Since(start))
				if w.Code != http.StatusOK {
					b.Errorf("status %d: %s", w.Code, w.Body)
					return
				}
			}
			lat.add(local)
		})
		b.StopTimer()
		lat.report(b)
	})

	b.Run("loopback-nats", func(b *testing.B) {
		bb := harness.Bus(b, testkit.NATS(b).ClientURL(), "bench", slog.New(slog.DiscardHandler))
		now := time.Now()
		v, _ := verify.New(nil, 0, secret)
		h, err := New(v, pubAdapter{bb}, directory(), slog.New(slog.DiscardHandler), Options{Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		mux := http.NewServeMux()
		h.Register(mux)
		srv := httptest.NewServer(mux)
		b.Cleanup(srv.Close)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		reqs := signAll(b.N, now)
		var lat latencies
		var mu sync.Mutex
		next := 0
		b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 concurrent clients
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			local := make([]time.Duration, 0, 256)
			for pb.Next() {
				mu.Lock()
				sr := reqs[next]
				next++
				mu.Unlock()
				r, _ := http.NewRequest(http.MethodPost, srv.URL+"/slack/commands", bytes.NewReader(sr.body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.Header.Set(verify.HeaderTimestamp, sr.timestamp)
				r.Header.Set(verify.HeaderSignature, sr.signature)
				start := time.Now()
				resp, err := client.Do(r)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				local = append(local, time.Since(start))
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
			lat.add(local)
		})
		b.StopTimer()
		lat.report(b)
	})
}

type pubAdapter struct{ b *bus.Bus }

func (p pubAdapter) Publish(ctx context.Context, subject string, ev bus.Event) error {
	_, err := p.b.Publish(ctx, subject, ev)
	return err
}
