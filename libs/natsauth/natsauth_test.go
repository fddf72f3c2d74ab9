package natsauth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/natsauth"
	"github.com/crmslack/crmslack/libs/testkit"
)

// client is a connection as one user that records the server's refusals.
type client struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	refused chan error
}

func connect(t *testing.T, srv *localnats.Server, user string, opts ...nats.Option) *client {
	t.Helper()
	c := &client{refused: make(chan error, 16)}
	opts = append(opts, nats.UserInfo(user, "pw-"+user), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case c.refused <- err:
		default:
		}
	}))
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js = testkit.JetStream(t, nc)
	return c
}

// subscribeRefused reports whether the server refuses a subscription.
func (c *client) subscribeRefused(t *testing.T, subject string) bool {
	t.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.refused:
		return errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(err.Error(), "Permissions Violation")
	case <-time.After(2 * time.Second):
		return false
	}
}

func start(t *testing.T, orgs ...string) *localnats.Server {
	t.Helper()
	pw := map[string]string{}
	for _, s := range natsauth.Services {
		pw[s] = "pw-" + s
	}
	for _, o := range orgs {
		pw[natsauth.CRMUser(o)] = "pw-" + natsauth.CRMUser(o)
	}
	users, err := natsauth.Users(pw, orgs)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := localnats.Start(localnats.Options{StoreDir: t.TempDir(), Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

func TestNoUserNoEntry(t *testing.T) {
	t.Parallel()
	srv := start(t)
	if nc, err := nats.Connect(srv.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("an anonymous client was let in")
	}
	if nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(natsauth.Teams, "wrong")); err == nil {
		nc.Close()
		t.Fatal("a wrong password was let in")
	}
}

func TestTheWalls(t *testing.T) {
	t.Parallel()
	srv := start(t, "o1", "o2")
	ctx := testkit.Context(t)
	teams := connect(t, srv, natsauth.Teams)
	for _, sc := range []jetstream.StreamConfig{
		{Name: "CRM", Subjects: []string{"crm.v1.>"}},
		{Name: "SLACK_OUT", Subjects: []string{"slack.out.>"}},
	} {
		if _, err := teams.js.CreateOrUpdateStream(ctx, sc); err != nil {
			t.Fatalf("teams ensuring %s: %v", sc.Name, err)
		}
	}
	access, err := teams.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "org_access"})
	if err != nil {
		t.Fatalf("teams creating org_access: %v", err)
	}
	if _, err := access.Put(ctx, "o1", []byte("enabled")); err != nil {
		t.Fatalf("teams writing org_access: %v", err)
	}

	t.Run("CRM org", func(t *testing.T) {
		crm := connect(t, srv, natsauth.CRMUser("o1"), nats.CustomInboxPrefix(natsauth.CRMInbox("o1")))
		if _, err := crm.js.Publish(ctx, "crm.v1.o1.record.upserted.Deals", []byte("{}")); err != nil {
			t.Errorf("o1 publishing its own event: %v", err)
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if _, err := crm.js.Publish(pctx, "crm.v1.o2.record.upserted.Deals", []byte("{}")); err == nil {
			t.Error("o1 published an event of o2")
		}
		if !crm.subscribeRefused(t, "slack.out.>") {
			t.Error("o1 may subscribe to slack.out.>")
		}
		if _, err := crm.js.KeyValue(pctx, "org_access"); err == nil {
			t.Error("o1 may read org_access")
		}
		if !crm.subscribeRefused(t, "_INBOX.>") {
			t.Error("o1 may hear other clients' inboxes")
		}
	})

	t.Run("org_access is written by teams only", func(t *testing.T) {
		for _, s := range []string{natsauth.Gateway, natsauth.Delivery, natsauth.Query, natsauth.Sharing} {
			c := connect(t, srv, s)
			kv, err := c.js.KeyValue(ctx, "org_access")
			if err != nil {
				t.Fatalf("%s reading org_access: %v", s, err)
			}
			if e, err := kv.Get(ctx, "o1"); err != nil || string(e.Value()) != "enabled" {
				t.Errorf("%s reading org_access: %v", s, err)
			}
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			if _, err := kv.Put(pctx, "o1", []byte("hijacked")); err == nil {
				t.Errorf("%s wrote org_access", s)
			}
			cancel()
		}
	})

	t.Run("SLACK_OUT is consumed by delivery only", func(t *testing.T) {
		for _, s := range []string{natsauth.Teams, natsauth.Gateway, natsauth.Query, natsauth.Sharing} {
			c := connect(t, srv, s)
			if _, err := c.js.Publish(ctx, "slack.out.o1.p0", []byte("{}")); err != nil {
				t.Errorf("%s asking for a post: %v", s, err)
			}
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			if _, err := c.js.CreateOrUpdateConsumer(pctx, "SLACK_OUT", jetstream.ConsumerConfig{Durable: "thief-" + s}); err == nil {
				t.Errorf("%s made a consumer on SLACK_OUT", s)
			}
			cancel()
			if !c.subscribeRefused(t, "slack.out.>") {
				t.Errorf("%s may subscribe to slack.out.>", s)
			}
		}
		d := connect(t, srv, natsauth.Delivery)
		cons, err := d.js.CreateOrUpdateConsumer(ctx, "SLACK_OUT", jetstream.ConsumerConfig{Durable: "delivery"})
		if err != nil {
			t.Fatalf("delivery's consumer: %v", err)
		}
		msgs, err := cons.Fetch(4, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range msgs.Messages() {
			if err := m.Ack(); err != nil {
				t.Errorf("delivery acking: %v", err)
			}
			n++
		}
		if n != 4 {
			t.Errorf("delivery fetched %d posts, want 4", n)
		}
	})

	t.Run("a service's bucket is its own", func(t *testing.T) {
		d := connect(t, srv, natsauth.Delivery)
		ledger, err := d.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "delivery_ledger"})
		if err != nil {
			t.Fatalf("delivery's ledger: %v", err)
		}
		if _, err := ledger.Put(ctx, "k", []byte("v")); err != nil {
			t.Fatalf("delivery writing its ledger: %v", err)
		}
		for _, s := range []string{natsauth.Teams, natsauth.Gateway, natsauth.Query, natsauth.Sharing} {
			c := connect(t, srv, s)
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			if _, err := c.js.KeyValue(pctx, "delivery_ledger"); err == nil {
				t.Errorf("%s opened delivery's ledger", s)
			}
			cancel()
			if !c.subscribeRefused(t, "$KV.delivery_ledger.>") {
				t.Errorf("%s may watch delivery's ledger", s)
			}
		}
	})
}
