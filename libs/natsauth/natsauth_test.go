package natsauth_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/natsauth"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
)

// client is a connection as one user that records the server's refusals.
type client struct {
	user       string
	nc         *nats.Conn
	js         jetstream.JetStream
	violations chan error
}

func connect(t *testing.T, srv *localnats.Server, user string) *client {
	t.Helper()
	c := &client{user: user, violations: make(chan error, 64)}
	nc, err := nats.Connect(srv.ClientURL(), testkit.NATSAs(t, pkiOf(srv), user, "pw-"+user),
		nats.CustomInboxPrefix(identity.NATSInbox(user)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if isViolation(err) {
				select {
				case c.violations <- err:
				default:
				}
			}
		}))
	if err != nil {
		t.Fatalf("connecting as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c
}

func isViolation(err error) bool {
	return errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(err.Error(), "Permissions Violation")
}

// allowed runs op and fails the test if it errs or the server refused
// anything on the way.
func (c *client) allowed(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := op(ctx)
	if ferr := c.nc.Flush(); err == nil {
		err = ferr
	}
	// A refusal is recorded before the flush's answer is read; its
	// callback may come later.
	if last := c.nc.LastError(); last != nil && isViolation(last) && err == nil {
		err = last
	}
	select {
	case v := <-c.violations:
		t.Errorf("%s may not %s: %v %v", c.user, what, v, drain(c))
	default:
		if err != nil {
			t.Errorf("%s %s: %v", c.user, what, err)
		}
	}
}

// refuse runs op and fails the test unless the server refuses it; op is
// cancelled once the refusal arrives (a refused request gets no answer).
func (c *client) refuse(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	drain(c) // a refusal left from the previous op does not count for this one
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = op(ctx)
		_ = c.nc.Flush()
	}()
	select {
	case <-c.violations:
		cancel()
		<-done
	case <-done:
		select {
		case <-c.violations:
		case <-time.After(5 * time.Second):
			t.Errorf("%s may %s", c.user, what)
		}
	}
}

// subscribe is an op that subscribes to subject and waits for the server.
func (c *client) subscribe(subject string) func(context.Context) error {
	return func(context.Context) error {
		sub, err := c.nc.SubscribeSync(subject)
		if err != nil {
			return err
		}
		defer sub.Unsubscribe()
		return c.nc.Flush()
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
	srv, err := localnats.Start(localnats.Options{StoreDir: t.TempDir(), Users: users, TLS: testkit.Identity(t, testkit.PKI(t), "nats").ServerConfig()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	pkis.Store(srv, testkit.PKI(t))
	t.Cleanup(func() { pkis.Delete(srv) })
	return srv
}

// pkis is each server's CA, whose certificates its clients present (a
// subtest's testkit.PKI would be a CA of its own).
var pkis sync.Map // *localnats.Server → *devpki.Dir

func pkiOf(srv *localnats.Server) *devpki.Dir {
	d, _ := pkis.Load(srv)
	return d.(*devpki.Dir)
}

// literal makes a permitted subject publishable: each wildcard becomes a
// token.
func literal(subject string) string {
	return strings.NewReplacer("*", "x", ">", "x").Replace(subject)
}

func TestNoUserNoEntry(t *testing.T) {
	t.Parallel()
	srv := start(t)
	if nc, err := nats.Connect(srv.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("an anonymous client was let in")
	}
	if nc, err := nats.Connect(srv.ClientURL(), testkit.NATSAs(t, pkiOf(srv), identity.Teams, "wrong")); err == nil {
		nc.Close()
		t.Fatal("a wrong password was let in")
	}
}

func TestDeadLettersAreTheBus(t *testing.T) {
	t.Parallel()
	n := natsauth.Needs{Consumes: map[string][]string{"S": {"d"}}}
	p, _ := n.Allow()
	for _, want := range []string{"$JS.API.STREAM.CREATE." + bus.DeadLetterStream, bus.DeadLetterSubject("S", "d")} {
		if !slices.Contains(p, want) {
			t.Errorf("a consumer's permissions lack %s (libs/bus's dead letters)", want)
		}
	}
}

func TestEveryServiceHasARow(t *testing.T) {
	t.Parallel()
	for _, s := range identity.Services {
		if _, err := natsauth.Permissions(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := natsauth.Permissions("nobody"); err == nil {
		t.Error("a user without a row got permissions")
	}
}

// TestCRMOrg: org A's CRM credential publishes org A's events and nothing
// else, and hears only its own inbox.
func TestCRMOrg(t *testing.T) {
	t.Parallel()
	srv := start(t, "o1", "o2")
	setUp(t, srv)
	crm := connect(t, srv, natsauth.CRMUser("o1"))
	crm.allowed(t, "publish its own event", func(ctx context.Context) error {
		_, err := crm.js.Publish(ctx, topology.RecordUpserted("o1", "Deals"), []byte("{}"))
		return err
	})
	crm.refuse(t, "publish an event of o2", func(ctx context.Context) error {
		_, err := crm.js.Publish(ctx, topology.RecordUpserted("o2", "Deals"), []byte("{}"))
		return err
	})
	crm.refuse(t, "subscribe to slack.out.>", crm.subscribe("slack.out.>"))
	crm.refuse(t, "read org_access", func(ctx context.Context) error {
		_, err := crm.js.KeyValue(ctx, topology.BucketOrgAccess)
		return err
	})
	crm.refuse(t, "watch org_access", crm.subscribe("$KV.org_access.>"))
	crm.refuse(t, "hear other clients' inboxes", crm.subscribe("_INBOX.>"))
	crm.refuse(t, "hear o2's inbox", crm.subscribe(natsauth.CRMInbox("o2")+".>"))
	crm.refuse(t, "consume the CRM stream", func(ctx context.Context) error {
		_, err := crm.js.CreateOrUpdateConsumer(ctx, topology.StreamCRM, jetstream.ConsumerConfig{Durable: "thief"})
		return err
	})
}

// setUp makes every stream and bucket of the table, with an entry in
// org_access, as the services would.
func setUp(t *testing.T, srv *localnats.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	streams := append(topology.Streams(topology.StreamOptions{}), topology.RemindersStream(topology.StreamOptions{}), bus.DeadLetterStreamConfig(1))
	for _, name := range []string{"QUERY_RECORDS", "QUERY_USERS"} {
		streams = append(streams, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(strings.ReplaceAll(name, "_", ".")) + ".>"}, AllowDirect: true})
	}
	byOwner := map[string]string{}
	for _, s := range identity.Services {
		for _, b := range natsauth.Table[s].Owns {
			byOwner[b] = s
		}
	}
	owners := map[string]*client{}
	for _, s := range identity.Services {
		owners[s] = connect(t, srv, s)
	}
	// Each stream by a service that ensures it; each bucket by its owner.
	for _, sc := range streams {
		made := false
		for _, s := range identity.Services {
			if slices.Contains(natsauth.Table[s].Ensures, sc.Name) || (sc.Name == bus.DeadLetterStream && len(natsauth.Table[s].Consumes) > 0) {
				if _, err := owners[s].js.CreateOrUpdateStream(ctx, sc); err != nil {
					t.Fatalf("%s ensuring %s: %v", s, sc.Name, err)
				}
				made = true
				break
			}
		}
		if !made {
			t.Fatalf("no service ensures %s", sc.Name)
		}
	}
	for _, b := range slices.Sorted(maps.Keys(byOwner)) {
		kv, err := owners[byOwner[b]].js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b})
		if err != nil {
			t.Fatalf("%s making its bucket %s: %v %v", byOwner[b], b, err, drain(owners[byOwner[b]]))
		}
		if _, err := kv.Put(ctx, "o1", []byte("v")); err != nil {
			t.Fatalf("%s writing its bucket %s: %v", byOwner[b], b, err)
		}
	}
}

// TestEachServiceDoesWhatItsTableSays connects as every service and checks,
// against a real server, that each thing its Needs lists works and that the
// walls around what it does not list hold.
func TestEachServiceDoesWhatItsTableSays(t *testing.T) {
	t.Parallel()
	srv := start(t)
	setUp(t, srv)
	allBuckets := map[string]bool{}
	durables := map[string][]string{} // stream → every service's durables
	for _, s := range identity.Services {
		for _, b := range natsauth.Table[s].Owns {
			allBuckets[b] = true
		}
		for st, ds := range natsauth.Table[s].Consumes {
			durables[st] = append(durables[st], ds...)
		}
	}
	for _, service := range identity.Services {
		t.Run(service, func(t *testing.T) {
			t.Parallel()
			n := natsauth.Table[service]
			c := connect(t, srv, service)

			// What it may do.
			for _, st := range n.Ensures {
				c.allowed(t, "ensure stream "+st, func(ctx context.Context) error {
					s, err := c.js.Stream(ctx, st)
					if err != nil {
						return err
					}
					_, err = c.js.UpdateStream(ctx, s.CachedInfo().Config)
					return err
				})
			}
			for _, st := range slices.Sorted(maps.Keys(n.Consumes)) {
				for _, d := range n.Consumes[st] {
					if d == "*" {
						d = "any-consumer"
					}
					c.allowed(t, "consume "+st+" as "+d, func(ctx context.Context) error {
						cons, err := c.js.CreateOrUpdateConsumer(ctx, st, jetstream.ConsumerConfig{Durable: d, AckPolicy: jetstream.AckExplicitPolicy})
						if err != nil {
							return err
						}
						if _, err := cons.Info(ctx); err != nil {
							return err
						}
						_, err = cons.Fetch(1, jetstream.FetchMaxWait(100*time.Millisecond))
						return err
					})
					c.allowed(t, "watch the max deliveries of "+st+"/"+d, c.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+st+"."+d))
					c.allowed(t, "dead-letter "+st+"/"+d, func(ctx context.Context) error {
						_, err := c.js.Publish(ctx, bus.DeadLetterSubject(st, d), []byte("{}"))
						return err
					})
				}
			}
			for _, st := range slices.Sorted(maps.Keys(n.Deletes)) {
				for _, d := range n.Deletes[st] {
					c.allowed(t, "remove consumer "+st+"/"+d, func(ctx context.Context) error {
						if err := c.js.DeleteConsumer(ctx, st, d); !errors.Is(err, jetstream.ErrConsumerNotFound) {
							return err
						}
						return nil
					})
				}
			}
			for _, st := range slices.Sorted(maps.Keys(n.Rewinds)) {
				for _, d := range n.Rewinds[st] {
					if d == "*" {
						d = "any-consumer"
					}
					c.allowed(t, "rewind consumer "+st+"/"+d, func(ctx context.Context) error {
						if _, err := c.js.CreateOrUpdateConsumer(ctx, st, jetstream.ConsumerConfig{Durable: d, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
							return err
						}
						s, err := c.js.Stream(ctx, st)
						if err != nil {
							return err
						}
						_, err = s.ResetConsumer(ctx, d)
						return err
					})
				}
			}
			for _, st := range n.Reads {
				c.allowed(t, "read stream "+st, func(ctx context.Context) error {
					cons, err := c.js.OrderedConsumer(ctx, st, jetstream.OrderedConsumerConfig{})
					if err != nil {
						return err
					}
					_, err = cons.Fetch(1, jetstream.FetchMaxWait(100*time.Millisecond))
					return err
				})
			}
			for _, st := range n.Gets {
				c.allowed(t, "get a message of "+st, func(ctx context.Context) error {
					s, err := c.js.Stream(ctx, st)
					if err != nil {
						return err
					}
					if _, err := s.GetMsg(ctx, 1); !errors.Is(err, jetstream.ErrMsgNotFound) {
						return err
					}
					return nil
				})
			}
			for _, b := range n.Owns {
				c.allowed(t, "write its bucket "+b, func(ctx context.Context) error {
					kv, err := c.js.KeyValue(ctx, b)
					if err != nil {
						return err
					}
					if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
						return err
					}
					if _, err := kv.Get(ctx, "k"); err != nil {
						return err
					}
					return watchFirst(ctx, kv)
				})
			}
			for _, b := range n.Watches {
				c.allowed(t, "read and watch "+b, func(ctx context.Context) error {
					kv, err := c.js.KeyValue(ctx, b)
					if err != nil {
						return err
					}
					if _, err := kv.Get(ctx, "o1"); err != nil {
						return err
					}
					return watchFirst(ctx, kv)
				})
			}
			for _, st := range n.Purges {
				c.allowed(t, "purge subjects of "+st, func(ctx context.Context) error {
					s, err := c.js.Stream(ctx, st)
					if err != nil {
						return err
					}
					return s.Purge(ctx, jetstream.WithPurgeSubject(literal(s.CachedInfo().Config.Subjects[0])))
				})
			}
			for _, subj := range n.Publishes {
				c.allowed(t, "publish "+subj, func(ctx context.Context) error {
					_, err := c.js.Publish(ctx, literal(subj), []byte("{}"))
					return err
				})
			}
			for _, subj := range n.Subscribes {
				c.allowed(t, "subscribe "+subj, c.subscribe(subj))
			}
			for _, st := range n.Advisories {
				c.allowed(t, "watch max deliveries of "+st, c.subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."+st+".x"))
			}

			// What it may not (after every allowed op: a refusal stays the
			// connection's last error).
			for _, b := range n.Watches {
				if !slices.Contains(n.Owns, b) {
					c.refuse(t, "write "+b, func(ctx context.Context) error {
						_, err := c.js.Publish(ctx, "$KV."+b+".o1", []byte("hijacked"))
						return err
					})
				}
			}
			for _, b := range slices.Sorted(maps.Keys(allBuckets)) {
				if slices.Contains(n.Owns, b) || slices.Contains(n.Watches, b) {
					continue
				}
				c.refuse(t, "open another's bucket "+b, func(ctx context.Context) error {
					_, err := c.js.KeyValue(ctx, b)
					return err
				})
				c.refuse(t, "watch another's bucket "+b, c.subscribe("$KV."+b+".>"))
			}
			for _, st := range slices.Sorted(maps.Keys(durables)) {
				for _, d := range durables[st] {
					if d == "*" || slices.Contains(n.Consumes[st], d) || slices.Contains(n.Consumes[st], "*") {
						continue
					}
					c.refuse(t, "take over "+st+"/"+d, func(ctx context.Context) error {
						_, err := c.js.CreateOrUpdateConsumer(ctx, st, jetstream.ConsumerConfig{Durable: d})
						return err
					})
				}
			}
			if service != identity.Delivery {
				c.refuse(t, "consume SLACK_OUT", func(ctx context.Context) error {
					_, err := c.js.CreateOrUpdateConsumer(ctx, topology.StreamSlackOut, jetstream.ConsumerConfig{Durable: "thief"})
					return err
				})
				c.refuse(t, "subscribe to slack.out.>", c.subscribe("slack.out.>"))
			}
			c.refuse(t, "speak for the CRM", func(ctx context.Context) error {
				_, err := c.js.Publish(ctx, topology.RecordUpserted("o1", "Deals"), []byte("{}"))
				return err
			})
			c.refuse(t, "delete a stream", func(ctx context.Context) error {
				return c.js.DeleteStream(ctx, topology.StreamCRM)
			})
			c.refuse(t, "hear other clients' inboxes", c.subscribe("_INBOX.>"))
			c.refuse(t, "hear everything", c.subscribe(">"))
		})
	}
}

// watchFirst watches kv until its first entry or the end of its history.
func watchFirst(ctx context.Context, kv jetstream.KeyValue) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer w.Stop()
	select {
	case <-w.Updates():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func drain(c *client) []error {
	var errs []error
	for {
		select {
		case err := <-c.violations:
			errs = append(errs, err)
		default:
			return errs
		}
	}
}
