// Package delivery is the Slack egress: every message the product sends to
// Slack goes through it. It consumes the Slack commands (slack.out.v1.>)
// from JetStream, carries each out within the data boundary and Slack's
// rate limits, at most once per idempotency key, and reports every outcome
// (integration.v1.<org>.delivery.succeeded|failed). It keeps the audit
// trail of outcomes in MongoDB and serves it over gRPC
// (DeliveryAuditService). Run is its in-process entry point, used by
// cmd/delivery and the local runner.
//
// # Replicas
//
// Any number of replicas may run. SLACK_OUT's subject transform adds a
// partition token to every command (the hash of its org and team, among
// DELIVERY_PARTITIONS), each partition has its own durable consumer
// (delivery-p<k>), and a replica consumes only the partitions whose lease it
// holds in the bucket delivery_partitions; the replicas share the partitions
// evenly. A channel belongs to one team, so to one partition, so to one
// replica at a time: its commands keep their order across replicas,
// restarts, crashes and handovers (see the partition and lanes packages).
//
// Inside: partition (the transform, the leases, the mover of commands
// stored without a partition), lanes (one consumer, one in-order lane per
// channel), deliver (the core: one command to its end, the ledger protocol
// and one executor per command kind, behind the ports it declares),
// boundary (OrgAccess read model), pacing (token buckets and Retry-After),
// targets (email and DM resolution), ledger (idempotency in JetStream KV),
// slackapi (slack-go adapter), tokens (team registry client), outcome
// (events), audit (MongoDB trail and gRPC). Here: Run and build (the
// wiring on libs/service), settle.go (outcomes, audit rows and acks), advisory.go (max
// deliveries). docs/delivery.md describes the whole.
package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/orgaccess"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/topology"
	"github.com/crmslack/crmslack/libs/tracectx"
	deliveryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/delivery/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/delivery/internal/audit"
	"github.com/crmslack/crmslack/services/delivery/internal/boundary"
	"github.com/crmslack/crmslack/services/delivery/internal/command"
	"github.com/crmslack/crmslack/services/delivery/internal/deadletters"
	"github.com/crmslack/crmslack/services/delivery/internal/deliver"
	"github.com/crmslack/crmslack/services/delivery/internal/failure"
	"github.com/crmslack/crmslack/services/delivery/internal/lanes"
	"github.com/crmslack/crmslack/services/delivery/internal/ledger"
	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
	"github.com/crmslack/crmslack/services/delivery/internal/partition"
	"github.com/crmslack/crmslack/services/delivery/internal/slackapi"
	"github.com/crmslack/crmslack/services/delivery/internal/tokens"
)

// Durable was the single command consumer of the one-instance layout.
//
// Deprecated: commands are consumed per partition by the durables
// [Durables] names; a Durable left from an earlier version is taken over
// (its unsettled commands moved into their partitions) and removed at
// start-up.
const Durable = partition.LegacyDurable

// Durables are the command consumers' durable names on SLACK_OUT for p
// partitions, "delivery-p0" to "delivery-p<p-1>": contracts (renaming one
// replays its partition's commands; the ledger would keep them from being
// posted again, but every one would be re-reported).
func Durables(p int) []string {
	out := make([]string, p)
	for k := range out {
		out[k] = partition.Durable(k)
	}
	return out
}

// SlackOutStream is the SLACK_OUT stream configuration delivery ensures:
// libs/topology's, whose subject transform adds the partition token for
// o.SlackOutPartitions partitions (0: topology.SlackOutPartitions).
func SlackOutStream(o topology.StreamOptions) jetstream.StreamConfig {
	return topology.Select(o, topology.StreamSlackOut)[0]
}

// Run runs the delivery service until ctx ends; a clean stop returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	cfg = cfg.withDefaults()
	owner := instanceID()
	return service.Run(ctx, service.Spec{
		Name: "delivery", Config: cfg, Log: slog.New(tracectx.LogHandler(log.Handler())), Registry: reg, Vars: vars,
		Store: &service.Store{Indexes: audit.Indexes()},
		// SLACK_OUT is ensured in build: its partition transform waits
		// for an unpartitioned backlog to be moved.
		Bus: &service.Bus{Streams: []string{topology.StreamIntegration}},
		Build: func(ctx context.Context, rt *service.Runtime) error {
			return build(ctx, cfg, owner, rt)
		},
		Ready: func(b service.Bound) {
			if cfg.Ready != nil {
				cfg.Ready(Addrs{GRPC: b[service.ListenerGRPC], Ops: b[service.ListenerOps], Instance: owner})
			}
		},
	})
}

// build wires delivery on the store and bus: the streams and buckets it
// owns, the deliverer and its adapters, the partitions' consumers, the
// audit trail and its gRPC service.
func build(ctx context.Context, cfg Config, owner string, rt *service.Runtime) error {
	log, reg, b := rt.Log(), rt.Registry(), rt.Bus
	js := b.JetStream()
	streamOpts := topology.StreamOptions{Replicas: cfg.NATSReplicas, Storage: jetstream.FileStorage, SlackOutPartitions: cfg.Partitions}
	ensureSlackOut := func(ctx context.Context) error {
		_, err := b.EnsureStream(ctx, SlackOutStream(streamOpts))
		return err
	}
	if err := ensureSlackOutAtStart(ctx, js, cfg.Partitions, ensureSlackOut, log); err != nil {
		return err
	}
	if _, err := b.EnsureDeadLetterStream(ctx); err != nil {
		return err
	}
	accessKV, err := orgaccess.Bucket(ctx, js, cfg.NATSReplicas)
	if err != nil {
		return err
	}
	ledgerKV, err := ledger.Ensure(ctx, js, cfg.LedgerTTL, cfg.NATSReplicas)
	if err != nil {
		return err
	}
	// The leases have a connection of their own: renewals must not queue
	// behind a burst of command traffic (a lease not renewed in time stops
	// its partition, and every command it held comes back).
	leaseBus, err := bus.Connect(ctx, bus.Config{URL: cfg.NATSURL, Name: "delivery-leases", Logger: log, NATSOptions: rt.NATSLogin()})
	if err != nil {
		return err
	}
	rt.OnClose("lease connection", func(context.Context) error { return leaseBus.Close() })
	leasesKV, err := partition.EnsureBucket(ctx, leaseBus.JetStream(), cfg.LeaseTTL, cfg.NATSReplicas)
	if err != nil {
		return err
	}
	teamsConn, err := rt.Dial("TEAMS_ADDR", cfg.TeamsAddr, identity.Teams)
	if err != nil {
		return err
	}
	slack, err := slackapi.New(cfg.SlackAPIURL, slackapi.NewHTTPClient(cfg.Concurrency), cfg.ResponseURLHosts)
	if err != nil {
		return fmt.Errorf("SLACK_API_URL: %w", err)
	}
	methods := deliver.DefaultMethodLimits()
	for m, l := range cfg.TierOverrides {
		methods[m] = l
	}
	for m, l := range methods {
		methods[m] = withHeadroom(l)
	}
	metrics, err := deliver.NewMetrics(reg)
	if err != nil {
		return err
	}
	model := boundary.NewModel()
	deliverer := deliver.New(deliver.Config{
		Owner:        owner,
		MaxAttempts:  cfg.MaxAttempts,
		BackoffBase:  cfg.BackoffBase,
		BackoffMax:   cfg.BackoffMax,
		SlackTimeout: cfg.SlackTimeout,
		Unconfirmed:  cfg.Unconfirmed,
		Concurrency:  cfg.Concurrency,
		Limits:       deliver.Limits{Channel: withHeadroom(pacing.Limit{Rate: cfg.ChannelRate, Burst: cfg.ChannelBurst}), Methods: methods},
		Permalinks:   cfg.Permalinks,
		Now:          cfg.Now,
	}, slack, model, tokens.New(tokens.GRPC{Client: teamsv1.NewTeamRegistryServiceClient(teamsConn)}, cfg.Now),
		ledger.New(js, ledgerKV), pacing.New(cfg.Now), metrics, log)

	writer := audit.NewWriter(rt.Store.Collection(audit.Collection), cfg.AuditBatch, cfg.AuditFlush, log)
	settled, err := newSettler(b, writer, cfg.Now, reg, log)
	if err != nil {
		return err
	}
	// Closed before the bus: the outcomes in flight are settled.
	rt.OnClose("outcomes", func(context.Context) error { settled.close(); return nil })
	svc := &worker{
		cfg: cfg, js: js, deliverer: deliverer, settle: settled, log: log, reg: reg,
		mover: partition.MoverConfig{
			Stream: topology.StreamSlackOut, Partitions: cfg.Partitions, AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver,
			Restore: ensureSlackOut, Logger: log,
		},
	}
	coordinator, err := partition.NewCoordinator(leasesKV, partition.Config{
		Partitions: cfg.Partitions, TTL: cfg.LeaseTTL, Instance: owner, Work: svc.runPartition, Logger: log, Registerer: reg,
	})
	if err != nil {
		return err
	}
	advisory, err := settled.watchMaxDeliveries(ctx, cfg.MaxDeliver)
	if err != nil {
		return err
	}
	rt.OnClose("max-deliveries advisory", func(context.Context) error { return advisory.Unsubscribe() })

	deliveryv1.RegisterDeliveryAuditServiceServer(rt.GRPC(), audit.NewServer(audit.NewRepository(rt.Store.Collection(audit.Collection))))
	deliveryv1.RegisterDeadLetterServiceServer(rt.GRPC(), deadletters.NewServer(rt.Bus.JetStream()))
	rt.Check(func(context.Context) error {
		select {
		case <-model.Ready():
			return nil
		default:
			return errors.New("org access not loaded yet")
		}
	})
	rt.Part("org-access", func(ctx context.Context) error { return orgaccess.Watch(ctx, accessKV, model, log) })
	rt.Part("commands", func(ctx context.Context) error {
		// Nothing is delivered before the data boundary is known.
		select {
		case <-model.Ready():
		case <-ctx.Done():
			return nil
		}
		return coordinator.Run(ctx)
	})
	rt.Part("audit", func(ctx context.Context) error {
		// The settler writes the rows; what is left is the durables that
		// fed the trail before, drained and removed.
		return audit.DrainLegacy(ctx, b, writer, max(cfg.AuditBatch, 16), log)
	})
	log.InfoContext(ctx, "delivery wired", "instance", owner, "partitions", cfg.Partitions, "lease_ttl", cfg.LeaseTTL,
		"channel_limit", pacing.Limit{Rate: cfg.ChannelRate, Burst: cfg.ChannelBurst}.String())
	return nil
}

// withHeadroom keeps one call of a bucket's burst in reserve. Slack's bucket
// starts counting when our first call reaches it, which is later than ours
// by that call's latency; when a later call travels faster than the first,
// it arrives "early" by the difference, and a bucket paced exactly at the
// limit would then get a 429 (each costing a whole Retry-After second). One
// token of headroom absorbs up to 1/rate of such jitter.
func withHeadroom(l pacing.Limit) pacing.Limit {
	if !l.IsUnlimited() && l.Burst > 1 {
		l.Burst--
	}
	return l
}

// ConsumerConfig is partition k's command consumer: explicit acks one by
// one (lanes settle out of stream order), AckWait kept alive by InProgress
// while a command waits in its lane, MaxAckPending the number of commands
// held. No server-side BackOff: retries happen in the lane, which keeps
// order.
func ConsumerConfig(cfg Config, k int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        partition.Durable(k),
		Description:    "Slack commands of one partition for the egress; the durable name is a contract",
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     cfg.MaxDeliver,
		MaxAckPending:  cfg.MaxInFlight,
		FilterSubjects: []string{partition.Filter(k)},
	}
}

// ensureSlackOutAtStart ensures SLACK_OUT with the partition transform,
// except while commands stored without a partition (the one-instance
// layout's backlog) wait to be moved: the mover applies the transform once
// they are, so that every channel's commands enter their partition in order.
// A stream partitioned for another count is re-partitioned, with a warning:
// that is a migration (docs/configuration.md), or the replicas disagree.
func ensureSlackOutAtStart(ctx context.Context, js jetstream.JetStream, p int, ensure func(context.Context) error, log *slog.Logger) error {
	s, err := js.Stream(ctx, topology.StreamSlackOut)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return ensure(ctx)
	}
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", topology.StreamSlackOut, err)
	}
	switch have := partition.CountOf(s.CachedInfo().Config); {
	case have == 0:
		n, err := partition.Backlog(ctx, js, topology.StreamSlackOut)
		if err != nil {
			return fmt.Errorf("reading the unpartitioned backlog: %w", err)
		}
		if n > 0 {
			log.InfoContext(ctx, "SLACK_OUT holds commands without a partition; the partition transform is applied once they are moved", "waiting", n)
			return nil
		}
	case have != p:
		log.WarnContext(ctx, "SLACK_OUT is partitioned for another partition count; re-partitioning it (see docs/configuration.md, changing DELIVERY_PARTITIONS)",
			"stream_partitions", have, "partitions", p)
	}
	return ensure(ctx)
}

// instanceID names this process in ledger claims.
func instanceID() string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return strings.ReplaceAll(host, ".", "-") + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// worker connects the partitions' dispatchers to the deliverer.
type worker struct {
	cfg       Config
	js        jetstream.JetStream
	deliverer *deliver.Deliverer
	settle    *settler
	mover     partition.MoverConfig
	log       *slog.Logger
	reg       prometheus.Registerer
}

// runPartition consumes partition k until ctx ends. The owner of partition
// 0 also moves commands stored without a partition into theirs.
func (s *worker) runPartition(ctx context.Context, k int) error {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, topology.StreamSlackOut, ConsumerConfig(s.cfg, k))
	if err != nil {
		return fmt.Errorf("ensuring consumer %s: %w", partition.Durable(k), err)
	}
	s.reclaim(ctx, cons, k)
	var moving sync.WaitGroup
	defer moving.Wait()
	if k == 0 {
		mc, err := partition.EnsureMover(ctx, s.js, s.mover)
		if err != nil {
			return err
		}
		moving.Go(func() {
			if err := partition.Move(ctx, s.js, mc, s.mover); err != nil {
				s.log.ErrorContext(ctx, "moving unpartitioned commands stopped", "err", err)
			}
		})
	}
	dispatcher, err := lanes.New(lanes.Config{
		AckWait:      s.cfg.AckWait,
		DrainTimeout: s.cfg.SlackTimeout + 15*time.Second,
		Decode:       s.decode,
		Process:      s.process,
		Reject:       s.settle.reject,
		Logger:       s.log.With("partition", k),
		Name:         partition.Durable(k),
		Registerer:   s.reg,
	})
	if err != nil {
		return err
	}
	return dispatcher.Run(ctx, cons)
}

// reclaim hands back at once what a previous owner of partition k held.
// This replica holds k's lease, so that owner has stopped (a crash, or its
// lease lost and its worker fenced): rewinding the consumer to its ack
// floor redelivers those commands now, in stream order, instead of after
// their AckWait (the lanes' start-up gate). Commands above the floor that
// were already settled come back too; the ledger recognises them and
// nothing is posted again; a call the old owner may still be completing is
// guarded by its ledger claim. While JetStream cannot answer (the
// consumer's leader died with the old owner's node and is being elected),
// the rewind is retried for up to an AckWait, after which the commands come
// back by themselves. A server without the reset API (before 2.14) leaves
// the gate to wait.
func (s *worker) reclaim(ctx context.Context, cons jetstream.Consumer, k int) {
	info := cons.CachedInfo()
	if info == nil || info.NumAckPending == 0 {
		return
	}
	giveUp := time.Now().Add(s.cfg.AckWait)
	for {
		r, err := s.rewind(ctx, k)
		if err == nil {
			s.log.InfoContext(ctx, "commands a previous owner held redelivered now", "partition", k, "pending", info.NumAckPending, "from_seq", r.ResetSeq)
			return
		}
		if !bus.Unavailable(err) || time.Now().After(giveUp) {
			s.log.WarnContext(ctx, "rewinding the consumer failed; its pending commands come back after AckWait", "partition", k, "pending", info.NumAckPending, "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(reclaimRetry):
		}
	}
}

// reclaimRetry is the pause between rewinds while JetStream is unavailable.
const reclaimRetry = 500 * time.Millisecond

func (s *worker) rewind(ctx context.Context, k int) (*jetstream.ConsumerResetResponse, error) {
	st, err := s.js.Stream(ctx, topology.StreamSlackOut)
	if err != nil {
		return nil, err
	}
	return st.ResetConsumer(ctx, partition.Durable(k))
}

// decoded is a lane item's payload.
type decoded struct {
	cmd     *command.Command
	invalid error // set for a command that has an identity but cannot be carried out
}

func (s *worker) decode(msg jetstream.Msg) (string, any, error) {
	cmd, err := command.Decode(msg.Subject(), msg.Data())
	switch {
	case err == nil:
		return cmd.Lane(), &decoded{cmd: cmd}, nil
	case errors.Is(err, command.ErrInvalid):
		return "invalid/" + cmd.ID, &decoded{cmd: cmd, invalid: err}, nil
	}
	return "", nil, err
}

func (s *worker) process(ctx context.Context, it *lanes.Item) bool {
	d := it.Payload.(*decoded)
	ctx = traceContext(ctx, d.cmd.Traceparent)
	var out deliver.Outcome
	if d.invalid != nil {
		out = deliver.Outcome{Failure: failure.Wrap(failure.InvalidMessage, d.invalid, "the command cannot be carried out"), Attempts: 1}
	} else {
		var err error
		out, err = s.deliverer.Deliver(ctx, d.cmd)
		if err != nil {
			return false
		}
	}
	return s.settle.settle(ctx, it, d.cmd, out)
}

func traceContext(ctx context.Context, traceparent string) context.Context {
	if tc, err := tracectx.Parse(traceparent); err == nil {
		return tracectx.WithTrace(ctx, tc.Child())
	}
	return tracectx.WithTrace(ctx, tracectx.New())
}
