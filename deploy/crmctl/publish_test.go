package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPublishTwiceIsHarmless publishes a file into a real JetStream twice:
// the second run is dropped as duplicates, and the stream holds each event
// once on the subject its type and content give it.
func TestPublishTwiceIsHarmless(t *testing.T) {
	t.Parallel()
	ns := stackNATS(t, "org1")
	ctx := testkit.Context(t)
	args := []string{"publish", "-pki", testkit.PKI(t).Path(), "-nats", ns.ClientURL(), "testdata/events.ndjson"}

	var out, errb bytes.Buffer
	if code := run(ctx, args, nil, &out, &errb); code != 0 {
		t.Fatalf("first publish: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "3 published, 0 already published") {
		t.Fatalf("first publish: %s", out.String())
	}
	out.Reset()
	if code := run(ctx, args, nil, &out, &errb); code != 0 {
		t.Fatalf("second publish: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "0 published, 3 already published") {
		t.Fatalf("second publish: %s", out.String())
	}

	js := testkit.JetStream(t, testkit.NATSConn(t, ns))
	stream, err := js.Stream(ctx, topology.StreamCRM)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("stream holds %d messages, want 3", info.State.Msgs)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "crm.v1.org1.signal.call")
	if err != nil {
		t.Fatalf("signal not on its subject: %v", err)
	}
	if msg.Header.Get("Nats-Msg-Id") != "sig-1" {
		t.Errorf("Nats-Msg-Id = %q, want the envelope's event id", msg.Header.Get("Nats-Msg-Id"))
	}
}
