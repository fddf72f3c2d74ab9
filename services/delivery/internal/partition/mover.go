package partition

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MoverConfig configures the mover of unpartitioned commands.
type MoverConfig struct {
	// Stream is SLACK_OUT.
	Stream string
	// Partitions is P.
	Partitions int
	// AckWait and MaxDeliver are the consumer's.
	AckWait    time.Duration
	MaxDeliver int
	// Restore applies the stream's subject transform. Move calls it when
	// the stream has none (or another partition count) and every command
	// stored without a partition has been moved.
	Restore func(ctx context.Context) error
	Logger  *slog.Logger
}

// MovedMsgIDPrefix + the original stream sequence is a moved command's
// Nats-Msg-Id: a move repeated after a crash is dropped by the stream. The
// original event id cannot be reused, the stream saw it already.
const MovedMsgIDPrefix = "moved:"

// moverConsumer is UnpartitionedDurable's configuration.
func moverConsumer(cfg MoverConfig) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        UnpartitionedDurable,
		Description:    "delivery: moves commands stored without a partition token into their partition; the durable name is a contract",
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     cfg.MaxDeliver,
		MaxAckPending:  1000,
		FilterSubjects: []string{UnpartitionedFilter},
	}
}

// EnsureMover creates or updates the consumer UnpartitionedDurable. Created
// for the first time while the one-instance layout's LegacyDurable exists,
// it starts after that consumer's ack floor, so commands the old instance
// already carried out are not moved again; LegacyDurable is then removed.
func EnsureMover(ctx context.Context, js jetstream.JetStream, cfg MoverConfig) (jetstream.Consumer, error) {
	want := moverConsumer(cfg)
	if c, err := js.Consumer(ctx, cfg.Stream, UnpartitionedDurable); err == nil {
		info := c.CachedInfo()
		want.DeliverPolicy, want.OptStartSeq = info.Config.DeliverPolicy, info.Config.OptStartSeq
		c, err := js.UpdateConsumer(ctx, cfg.Stream, want)
		if err != nil {
			return nil, fmt.Errorf("updating consumer %s: %w", UnpartitionedDurable, err)
		}
		return c, removeLegacy(ctx, js, cfg)
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("looking up consumer %s: %w", UnpartitionedDurable, err)
	}
	if legacy, err := js.Consumer(ctx, cfg.Stream, LegacyDurable); err == nil {
		info := legacy.CachedInfo()
		want.DeliverPolicy, want.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
		cfg.logger().InfoContext(ctx, "upgrading from one delivery instance: moving the commands it had not settled",
			"legacy_consumer", LegacyDurable, "from_seq", want.OptStartSeq, "ack_pending", info.NumAckPending, "pending", info.NumPending)
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("looking up consumer %s: %w", LegacyDurable, err)
	}
	c, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, want)
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s: %w", UnpartitionedDurable, err)
	}
	return c, removeLegacy(ctx, js, cfg)
}

func removeLegacy(ctx context.Context, js jetstream.JetStream, cfg MoverConfig) error {
	err := js.DeleteConsumer(ctx, cfg.Stream, LegacyDurable)
	switch {
	case err == nil:
		cfg.logger().InfoContext(ctx, "removed the one-instance consumer", "consumer", LegacyDurable)
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	default:
		return fmt.Errorf("removing consumer %s: %w", LegacyDurable, err)
	}
	return nil
}

func (cfg MoverConfig) logger() *slog.Logger {
	if cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cfg.Logger
}

// Move republishes every command of cons (UnpartitionedDurable) under its
// partitioned subject, in stream order, and acknowledges it, until ctx ends.
//
// While the stream has no partition transform, every new command arrives
// unpartitioned and is moved in turn, so each channel's commands enter their
// partition in the order they were published. Once the mover has caught up,
// it applies the transform (cfg.Restore): later commands are stored in their
// partition directly, after the moved ones. Only commands published in the
// instant of that switch can end up after a newer one of their channel.
// This is how the one-instance layout is upgraded, and how a SLACK_OUT
// reconciled without the transform (a service on an older libs/topology)
// is repaired.
func Move(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, cfg MoverConfig) error {
	log := cfg.logger()
	var warned time.Time
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		md, err := msg.Metadata()
		if err != nil {
			_ = msg.Term()
			return
		}
		if time.Since(warned) > time.Minute {
			warned = time.Now()
			log.WarnContext(ctx, "moving commands stored without a partition token into their partition",
				"subject", msg.Subject(), "stream_seq", md.Sequence.Stream, "pending", md.NumPending)
		}
		subject, err := Partitioned(msg.Subject(), cfg.Partitions)
		if err != nil { // the filter lets only slack.out.v1.*.*.* through
			_ = msg.TermWithReason("not a command subject")
			return
		}
		h := nats.Header{}
		for k, v := range msg.Headers() {
			if !strings.HasPrefix(k, "Nats-") {
				h[k] = slices.Clone(v)
			}
		}
		h.Set(jetstream.MsgIDHeader, MovedMsgIDPrefix+strconv.FormatUint(md.Sequence.Stream, 10))
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_, err = js.PublishMsg(pctx, &nats.Msg{Subject: subject, Data: msg.Data(), Header: h}, jetstream.WithExpectStream(cfg.Stream))
		cancel()
		if err != nil {
			log.WarnContext(ctx, "moving a command into its partition failed; retrying", "stream_seq", md.Sequence.Stream, "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		// A lost ack means a second move, dropped by the stream as a
		// duplicate of MovedMsgIDPrefix+seq.
		_ = msg.Ack()
	}, jetstream.PullMaxMessages(64))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", UnpartitionedDurable, err)
	}
	// One stream info a second: the switch waits at most that long after
	// the mover caught up, and a transform removed by another service is
	// put back as quickly.
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-t.C:
			if err := restoreWhenCaughtUp(ctx, js, cons, cfg); err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "checking the SLACK_OUT partition transform", "err", err)
			}
		}
	}
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(5 * time.Second):
		cc.Stop()
	}
	return nil
}

// restoreWhenCaughtUp applies the transform when the stream lacks it and
// nothing waits to be moved.
func restoreWhenCaughtUp(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, cfg MoverConfig) error {
	s, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return err
	}
	if CountOf(s.CachedInfo().Config) == cfg.Partitions {
		return nil
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	if info.NumPending > 0 || info.NumAckPending > 0 {
		return nil // still moving
	}
	cfg.logger().WarnContext(ctx, "SLACK_OUT has no partition transform (the one-instance layout, or a service on an older libs/topology reconciled it); applying it")
	if cfg.Restore == nil {
		return nil
	}
	return cfg.Restore(ctx)
}

// Backlog counts the commands waiting to be moved into their partition: the
// mover's pending and unacknowledged messages, or, before the mover exists,
// those of the one-instance consumer it will take over.
func Backlog(ctx context.Context, js jetstream.JetStream, stream string) (int, error) {
	for _, name := range []string{UnpartitionedDurable, LegacyDurable} {
		c, err := js.Consumer(ctx, stream, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		info := c.CachedInfo()
		return int(info.NumPending) + info.NumAckPending, nil
	}
	return 0, nil
}
