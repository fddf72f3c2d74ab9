package feed_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/services/query/internal/feed"
	"github.com/crmslack/crmslack/services/query/internal/snapshot"
)

// streams starts a JetStream server with the snapshot streams and returns
// it with a writer of each (records, users).
func streams(tb testing.TB, ctx context.Context) (jetstream.JetStream, *snapshot.Writer, *snapshot.Writer) {
	tb.Helper()
	js := testkit.JetStream(tb, testkit.NATSConn(tb, testkit.NATS(tb)))
	for _, sc := range snapshot.StreamConfigs(1, jetstream.FileStorage) {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			tb.Fatal(err)
		}
	}
	var ws [2]*snapshot.Writer
	for i, name := range []string{snapshot.StreamRecords, snapshot.StreamUsers} {
		w, err := snapshot.NewWriter(ctx, js, name)
		if err != nil {
			tb.Fatal(err)
		}
		ws[i] = w
	}
	return js, ws[0], ws[1]
}

// feedMetrics are feed metrics on a registry of their own.
func feedMetrics(tb testing.TB) *feed.Metrics {
	tb.Helper()
	m, err := feed.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
