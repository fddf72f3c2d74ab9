// Package timers keeps reminder timers on JetStream message schedules
// (nats-server 2.12+, ADR-51): a timer is a message on its own subject of
// the REMINDERS stream with "Nats-Schedule: @at <time>" and
// "Nats-Schedule-Target: reminders.v1.<org>.due". The server stores and
// replicates it, fires a copy into the target at that time (headers kept,
// schedule headers stripped) and then removes the timer. Publishing to the
// same subject replaces the timer (the server adds a subject roll-up);
// purging the subject removes it. No timer lives in this process.
package timers

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	"github.com/crmslack/crmslack/libs/tracectx"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"

	"github.com/crmslack/crmslack/services/reminders/internal/remind"
)

// Schedule headers (nats-server's JSSchedulePattern, JSScheduleTarget,
// JSScheduleTTL).
const (
	HeaderSchedule       = "Nats-Schedule"
	HeaderScheduleTarget = "Nats-Schedule-Target"
	HeaderScheduleTTL    = "Nats-Schedule-TTL"
)

// Timers sets and removes timers on the REMINDERS stream.
type Timers struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	ttl    time.Duration
}

// New binds the stream (which the caller ensured with
// topology.RemindersStream).
func New(ctx context.Context, js jetstream.JetStream) (*Timers, error) {
	st, err := js.Stream(ctx, topology.StreamReminders)
	if err != nil {
		return nil, fmt.Errorf("binding stream %s: %w", topology.StreamReminders, err)
	}
	return &Timers{js: js, stream: st, ttl: topology.ReminderDueTTL}, nil
}

// Set sets (or replaces) the timer of t's slot to fire due at t.At.
func (ts *Timers) Set(ctx context.Context, org, activity string, t remind.Timer, due *remindersv1.ReminderDue) error {
	msg, err := ts.message(ctx, org, activity, t, due)
	if err != nil {
		return err
	}
	if _, err := ts.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("setting timer %s: %w", msg.Subject, err)
	}
	return nil
}

func (ts *Timers) message(ctx context.Context, org, activity string, t remind.Timer, due *remindersv1.ReminderDue) (*nats.Msg, error) {
	for _, tok := range []string{org, activity, t.User} {
		if _, err := topology.Token(tok); err != nil {
			return nil, fmt.Errorf("timer subject: %w", err)
		}
	}
	data, err := proto.Marshal(due)
	if err != nil {
		return nil, fmt.Errorf("encoding timer: %w", err)
	}
	msg := nats.NewMsg(topology.ReminderTimer(org, activity, t.User, t.Token()))
	msg.Data = data
	msg.Header.Set(HeaderSchedule, "@at "+t.At.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(HeaderScheduleTarget, topology.ReminderDue(org))
	msg.Header.Set(HeaderScheduleTTL, ts.ttl.String())
	// Copied into the fired message, where libs/bus checks it.
	msg.Header.Set(bus.HeaderType, string(due.ProtoReflect().Descriptor().FullName()))
	if tc, ok := tracectx.FromContext(ctx); ok {
		msg.Header.Set(bus.HeaderTraceparent, tc.Traceparent())
	}
	return msg, nil
}

// Remove removes one slot's timer, if set.
func (ts *Timers) Remove(ctx context.Context, org, activity string, s remind.Slot) error {
	return ts.purge(ctx, topology.ReminderTimer(org, activity, s.User, s.Token()))
}

// RemoveActivity removes every timer of an activity (snoozes included).
func (ts *Timers) RemoveActivity(ctx context.Context, org, activity string) error {
	return ts.purge(ctx, topology.ReminderActivityTimers(org, activity))
}

// RemoveUser removes every timer of a user in an org.
func (ts *Timers) RemoveUser(ctx context.Context, org, user string) error {
	return ts.purge(ctx, topology.ReminderUserTimers(org, user))
}

func (ts *Timers) purge(ctx context.Context, filter string) error {
	if err := ts.stream.Purge(ctx, jetstream.WithPurgeSubject(filter)); err != nil {
		return fmt.Errorf("removing timers %s: %w", filter, err)
	}
	return nil
}
