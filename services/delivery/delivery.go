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
// channel), deliver (one command to its end: boundary, Block Kit, targets,
// pacing, ledger, Slack),
// boundary (OrgAccess read model), pacing (token buckets and Retry-After),
// targets (email and DM resolution), ledger (idempotency in JetStream KV),
// slackapi (slack-go adapter), tokens (team registry client), outcome
// (events), audit (MongoDB trail and gRPC).
package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/libs/orgaccess"
	"github.com/crmslack/crmslack/libs/rpc"
	"github.com/crmslack/crmslack/libs/store"
	"github.com/crmslack/crmslack/libs/topology"
	"github.com/crmslack/crmslack/libs/tracectx"
	deliveryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/delivery/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/delivery/internal/audit"
	"github.com/crmslack/crmslack/services/delivery/internal/boundary"
	"github.com/crmslack/crmslack/services/delivery/internal/command"
	"github.com/crmslack/crmslack/services/delivery/internal/deliver"
	"github.com/crmslack/crmslack/services/delivery/internal/failure"
	"github.com/crmslack/crmslack/services/delivery/internal/lanes"
	"github.com/crmslack/crmslack/services/delivery/internal/ledger"
	"github.com/crmslack/crmslack/services/delivery/internal/outcome"
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
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("delivery configuration: %w", err)
	}
	cfg = cfg.withDefaults()
	trusted, err := cfg.Files.Load(true)
	if err != nil {
		return fmt.Errorf("delivery configuration: %w", err)
	}
	log = slog.New(tracectx.LogHandler(log.Handler())).With("service", "delivery")
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	owner := instanceID()

	db, err := store.Open(ctx, store.Config{URI: cfg.MongoURI, Database: cfg.Database, AppName: "delivery"})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = db.Close(cctx)
	}()
	if err := db.EnsureIndexes(ctx, audit.Indexes()); err != nil {
		return err
	}

	b, err := bus.Connect(ctx, bus.Config{URL: cfg.NATSURL, Name: "delivery", Logger: log, Registerer: reg, StreamReplicas: cfg.NATSReplicas, NATSOptions: trusted.NATS})
	if err != nil {
		return err
	}
	defer func() {
		if err := b.Close(); err != nil {
			log.Warn("closing the bus", "err", err)
		}
	}()
	js := b.JetStream()
	streamOpts := topology.StreamOptions{Replicas: cfg.NATSReplicas, Storage: jetstream.FileStorage, SlackOutPartitions: cfg.Partitions}
	ensureSlackOut := func(ctx context.Context) error {
		_, err := b.EnsureStream(ctx, SlackOutStream(streamOpts))
		return err
	}
	if err := ensureSlackOutAtStart(ctx, js, cfg.Partitions, ensureSlackOut, log); err != nil {
		return err
	}
	if err := b.EnsureStreams(ctx, topology.Select(streamOpts, topology.StreamIntegration)...); err != nil {
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
	leasesKV, err := partition.EnsureBucket(ctx, js, cfg.LeaseTTL, cfg.NATSReplicas)
	if err != nil {
		return err
	}

	teamsConn, err := rpc.Dial(cfg.TeamsAddr, trusted.Identity)
	if err != nil {
		return fmt.Errorf("TEAMS_ADDR: %w", err)
	}
	defer teamsConn.Close()

	respondHosts := cfg.ResponseURLHosts
	slack, err := slackapi.New(cfg.SlackAPIURL, slackapi.NewHTTPClient(cfg.Concurrency), respondHosts)
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
		ledger.New(ledgerKV), pacing.New(cfg.Now), metrics, log)

	settled, err := newSettler(b, cfg.Now, reg, log)
	if err != nil {
		return err
	}
	svc := &service{
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
	advisory, err := settled.watchMaxDeliveries(js, cfg.MaxDeliver)
	if err != nil {
		return err
	}
	defer func() { _ = advisory.Unsubscribe() }()

	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("DELIVERY_GRPC_ADDR %s: %w", cfg.GRPCAddr, err)
	}
	opsLis, err := net.Listen("tcp", cfg.OpsAddr)
	if err != nil {
		_ = grpcLis.Close()
		return fmt.Errorf("DELIVERY_OPS_ADDR %s: %w", cfg.OpsAddr, err)
	}
	gs, err := rpc.NewServer(log, rpc.Security{Identity: trusted.Identity, CRMKeys: trusted.CRMKeys, Registerer: reg})
	if err != nil {
		_ = grpcLis.Close()
		_ = opsLis.Close()
		return err
	}
	deliveryv1.RegisterDeliveryAuditServiceServer(gs, audit.NewServer(audit.NewRepository(db.Collection(audit.Collection))))

	var ready lifecycle.Readiness
	ready.AddCheck(db.Ping)
	ready.AddCheck(func(context.Context) error {
		if !b.Conn().IsConnected() {
			return errors.New("NATS disconnected")
		}
		return nil
	})
	ready.AddCheck(func(context.Context) error {
		select {
		case <-model.Ready():
			return nil
		default:
			return errors.New("org access not loaded yet")
		}
	})
	gatherer, ok := reg.(prometheus.Gatherer)
	if !ok {
		gatherer = prometheus.NewRegistry()
	}
	ops := &http.Server{Handler: lifecycle.OpsHandler(&ready, gatherer), ReadHeaderTimeout: 5 * time.Second}
	writer := audit.NewWriter(db.Collection(audit.Collection), cfg.AuditBatch, cfg.AuditFlush, log)

	ready.MarkReady(true)
	defer ready.MarkReady(false)
	log.InfoContext(ctx, "delivery serving", "grpc", grpcLis.Addr().String(), "ops", opsLis.Addr().String(),
		"instance", owner, "partitions", cfg.Partitions, "lease_ttl", cfg.LeaseTTL,
		"channel_limit", pacing.Limit{Rate: cfg.ChannelRate, Burst: cfg.ChannelBurst}.String())
	if cfg.Ready != nil {
		cfg.Ready(Addrs{GRPC: grpcLis.Addr().String(), Ops: opsLis.Addr().String(), Instance: owner})
	}
	return lifecycle.Run(ctx, log,
		gs.Part("grpc", grpcLis),
		lifecycle.HTTPServer("ops", ops, opsLis),
		lifecycle.Part{Name: "org-access", Run: func(ctx context.Context) error {
			return orgaccess.Watch(ctx, accessKV, model, log)
		}},
		lifecycle.Part{Name: "commands", Run: func(ctx context.Context) error {
			// Nothing is delivered before the data boundary is known.
			select {
			case <-model.Ready():
			case <-ctx.Done():
				return nil
			}
			return coordinator.Run(ctx)
		}},
		lifecycle.Part{Name: "audit", Run: func(ctx context.Context) error {
			// As many handlers as a batch holds, so batches fill up
			// rather than wait for the flush timer.
			return audit.Project(ctx, b, writer, max(cfg.AuditBatch, 16))
		}},
	)
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

// service connects the partitions' dispatchers to the deliverer.
type service struct {
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
func (s *service) runPartition(ctx context.Context, k int) error {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, topology.StreamSlackOut, ConsumerConfig(s.cfg, k))
	if err != nil {
		return fmt.Errorf("ensuring consumer %s: %w", partition.Durable(k), err)
	}
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

// decoded is a lane item's payload.
type decoded struct {
	cmd     *command.Command
	invalid error // set for a command that has an identity but cannot be carried out
}

func (s *service) decode(msg jetstream.Msg) (string, any, error) {
	cmd, err := command.Decode(msg.Subject(), msg.Data())
	switch {
	case err == nil:
		return cmd.Lane(), &decoded{cmd: cmd}, nil
	case errors.Is(err, command.ErrInvalid):
		return "invalid/" + cmd.ID, &decoded{cmd: cmd, invalid: err}, nil
	}
	return "", nil, err
}

func (s *service) process(ctx context.Context, it *lanes.Item) bool {
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

// settler reports outcomes and settles messages.
type settler struct {
	bus      *bus.Bus
	now      func() time.Time
	log      *slog.Logger
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newSettler(b *bus.Bus, now func() time.Time, reg prometheus.Registerer, log *slog.Logger) (*settler, error) {
	s := &settler{
		bus: b, now: now, log: log,
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmslack", Subsystem: "delivery", Name: "commands_total",
			Help: "Commands settled, by kind and outcome (succeeded, duplicate, or the failure code).",
		}, []string{"kind", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "crmslack", Subsystem: "delivery", Name: "command_seconds",
			Help:    "Time from a command's enqueue to its settlement, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{s.outcomes, s.latency} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("registering metrics: %w", err)
			}
		}
	}
	return s, nil
}

// settle publishes cmd's outcome, dead-letters it when the failure calls
// for it, and acknowledges the message. It returns false, handing the
// message back, only if the outcome could not be published before delivery
// stopped: the redelivery reports it from the ledger.
func (s *settler) settle(ctx context.Context, it *lanes.Item, cmd *command.Command, out deliver.Outcome) bool {
	subject, ev := outcome.Event(cmd, out, s.now())
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_, err := s.bus.Publish(pctx, subject, ev)
		cancel()
		if err == nil {
			break
		}
		s.log.WarnContext(ctx, "publishing an outcome failed", "command", cmd.ID, "attempt", attempt, "err", err)
		if ctx.Err() != nil && attempt >= 3 {
			return false
		}
		t := time.NewTimer(time.Duration(min(attempt, 10)) * 500 * time.Millisecond)
		<-t.C
	}
	msg := it.Msg()
	label := "succeeded"
	switch {
	case out.Failure != nil:
		label = out.Failure.Code.String()
		// The reason stays in the event: it may name a CRM user's email.
		s.log.InfoContext(ctx, "command failed", "command", cmd.ID, "kind", cmd.Kind, "org", cmd.Org, "team", cmd.Team,
			"code", out.Failure.Code.String(), "attempts", out.Attempts)
		if failure.DeadLetter(out.Failure.Code) {
			if err := s.deadLetter(ctx, msg, out.Failure.Error()); err != nil {
				s.log.ErrorContext(ctx, "dead-lettering failed; the outcome is reported, the message is terminated", "command", cmd.ID, "err", err)
			}
			_ = msg.TermWithReason(bus.HeaderSafe(out.Failure.Error()))
			s.count(cmd, label, it)
			return true
		}
	case out.Duplicate:
		label = "duplicate"
	}
	if err := msg.Ack(); err != nil {
		s.log.WarnContext(ctx, "ack failed; the command will be redelivered and replayed from the ledger", "command", cmd.ID, "err", err)
	}
	s.count(cmd, label, it)
	return true
}

func (s *settler) count(cmd *command.Command, label string, it *lanes.Item) {
	s.outcomes.WithLabelValues(string(cmd.Kind), label).Inc()
	if !it.Stored.IsZero() {
		s.latency.WithLabelValues(string(cmd.Kind)).Observe(s.now().Sub(it.Stored).Seconds())
	}
}

// reject dead-letters a message that is not a command at all.
func (s *settler) reject(ctx context.Context, msg jetstream.Msg, err error) {
	reason := err.Error()
	if derr := s.deadLetter(ctx, msg, reason); derr != nil {
		s.log.ErrorContext(ctx, "dead-lettering an undecodable command failed; it will be redelivered", "err", derr)
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	_ = msg.TermWithReason(bus.HeaderSafe(reason))
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	s.log.ErrorContext(ctx, "undecodable command dead-lettered", "subject", msg.Subject(), "stream_seq", seq, "reason", reason)
}

// deadLetter copies msg to its consumer's dead-letter subject
// (dlq.SLACK_OUT.delivery-p<k>) through libs/bus, de-duplicated by stream
// sequence.
func (s *settler) deadLetter(ctx context.Context, msg jetstream.Msg, reason string) error {
	md, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("dead-lettering: %w", err)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return s.bus.DeadLetter(pctx, msg, topology.StreamSlackOut, md.Consumer, reason)
}

// maxDeliveriesAdvisory is the part of the server's max-deliveries advisory
// used here.
type maxDeliveriesAdvisory struct {
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// watchMaxDeliveries dead-letters and reports failed a command the server
// stopped delivering (every delivery ended without a verdict: a crash loop).
// The replicas listen as one queue group, so one of them handles each.
func (s *settler) watchMaxDeliveries(js jetstream.JetStream, maxDeliver int) (*nats.Subscription, error) {
	subj := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + topology.StreamSlackOut + ".*"
	return s.bus.Conn().QueueSubscribe(subj, "delivery", func(m *nats.Msg) {
		var adv maxDeliveriesAdvisory
		if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
			return
		}
		if _, ok := partition.FromDurable(adv.Consumer); !ok {
			return // the mover's, or not ours: nothing to report
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stream, err := js.Stream(ctx, topology.StreamSlackOut)
		if err != nil {
			s.log.Error("max deliveries: looking up the stream", "err", err)
			return
		}
		raw, err := stream.GetMsg(ctx, adv.StreamSeq)
		if err != nil {
			s.log.Error("max deliveries: fetching the message", "stream_seq", adv.StreamSeq, "err", err)
			return
		}
		reason := fmt.Sprintf("delivered %d times (DELIVERY_MAX_DELIVER %d) without being settled", adv.Deliveries, maxDeliver)
		dup, err := s.bus.DeadLetterStored(ctx, raw, topology.StreamSlackOut, adv.Consumer, adv.Deliveries, reason)
		if err != nil {
			s.log.Error("max deliveries: dead-lettering", "stream_seq", adv.StreamSeq, "err", err)
		}

		cmd, err := command.Decode(raw.Subject, raw.Data)
		if cmd == nil {
			s.log.Error("max deliveries: undecodable command dead-lettered", "stream_seq", adv.StreamSeq, "err", err)
			return
		}
		out := deliver.Outcome{Failure: failure.New(failure.RetriesExhausted, "%s", reason), Attempts: uint32(adv.Deliveries)}
		subject, ev := outcome.Event(cmd, out, s.now())
		if _, err := s.bus.Publish(ctx, subject, ev); err != nil {
			s.log.Error("max deliveries: reporting the failure", "command", cmd.ID, "err", err)
		}
		if !dup { // a repeated advisory re-reports, de-duplicated by the outcome's event id
			s.log.Error("command dead-lettered after max deliveries", "command", cmd.ID, "consumer", adv.Consumer, "stream_seq", adv.StreamSeq)
		}
	})
}
