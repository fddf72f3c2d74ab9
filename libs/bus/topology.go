package bus

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// MinDuplicateWindow is the shortest stream Duplicates window [Bus.EnsureStream]
// accepts. Publishers use the event id as Nats-Msg-Id, and the stream drops a
// repeated id only inside this window. Slack retries an event for about five
// minutes (three attempts: immediately, after 1 min, after 5 min) and each
// attempt may be re-published by our ingress; ten minutes covers that with a
// margin for our own publish retries. The server's default (2 min) would not.
const MinDuplicateWindow = 10 * time.Minute

// Dead-letter topology.
const (
	// DeadLetterStream stores every dead letter.
	DeadLetterStream = "DLQ"
	// DeadLetterSubjectPrefix: a consumer's dead letters go to
	// "dlq.<stream>.<durable>".
	DeadLetterSubjectPrefix = "dlq"
	// DeadLetterMaxAge is how long dead letters are kept: two weeks, time
	// for someone to look after a holiday, then replay or discard them.
	DeadLetterMaxAge = 14 * 24 * time.Hour
)

// DeadLetterSubject is the subject a consumer's dead letters are published to.
func DeadLetterSubject(stream, durable string) string {
	return DeadLetterSubjectPrefix + "." + stream + "." + durable
}

// EnsureStream creates the stream or updates it to cfg; calling it again with
// the same cfg changes nothing. It refuses a Duplicates window shorter than
// [MinDuplicateWindow], including 0 (the server's 2-minute default): every
// stream of events must drop a re-published event id for at least that long.
func (b *Bus) EnsureStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if err := validateName("stream", cfg.Name); err != nil {
		return nil, err
	}
	if cfg.Duplicates < MinDuplicateWindow {
		return nil, fmt.Errorf("%w: stream %s: Duplicates window %s is shorter than %s: "+
			"a re-published event (Slack retries for ~5 min) would be stored twice",
			ErrInvalidConfig, cfg.Name, cfg.Duplicates, MinDuplicateWindow)
	}
	if len(cfg.Subjects) == 0 {
		return nil, fmt.Errorf("%w: stream %s has no subjects", ErrInvalidConfig, cfg.Name)
	}
	// Every replica of every service reconciles the streams it uses at
	// start-up; an update is sent only when something differs, so starts
	// do not churn the stream (nats-server races an update against a
	// concurrent consumer creation on the same stream).
	// The look-up is bounded like a creation attempt: an unanswered one
	// only means the creation below is sent.
	ictx, cancel := context.WithTimeout(ctx, b.cfg.APIAttemptTimeout)
	s, err := b.js.Stream(ictx, cfg.Name)
	cancel()
	if err == nil && configured(cfg, s.CachedInfo().Config) {
		return s, nil
	}
	s, err = createWithRetry(ctx, b.retrying(), "stream "+cfg.Name, func(ctx context.Context) (jetstream.Stream, error) {
		return b.js.CreateOrUpdateStream(ctx, cfg)
	})
	if err != nil {
		return nil, fmt.Errorf("bus: ensuring stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// configured reports whether the server's config already is want. The
// server fills numeric limits left at zero (MaxMsgs -1, Replicas 1 …) and
// adds its own metadata, so those are taken from have when want leaves
// them zero; everything else (a nil subject transform, an empty
// description) must match as given.
func configured(want, have jetstream.StreamConfig) bool {
	w, h := reflect.ValueOf(&want).Elem(), reflect.ValueOf(have)
	for i := range w.NumField() {
		f := w.Field(i)
		switch f.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Map:
			if f.IsZero() {
				f.Set(h.Field(i))
			}
		}
	}
	return reflect.DeepEqual(want, have)
}

// EnsureStreams ensures each stream in turn (see EnsureStream).
func (b *Bus) EnsureStreams(ctx context.Context, cfgs ...jetstream.StreamConfig) error {
	for _, cfg := range cfgs {
		if _, err := b.EnsureStream(ctx, cfg); err != nil {
			return err
		}
	}
	return nil
}

// DeadLetterStreamConfig is the configuration [Bus.EnsureDeadLetterStream]
// applies, with the given number of replicas (below 1 means 1).
func DeadLetterStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Replicas:    max(replicas, 1),
		Name:        DeadLetterStream,
		Description: "crmslack dead letters: messages a consumer gave up on, with Crmslack-Dlq-* headers saying why",
		Subjects:    []string{DeadLetterSubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy, // kept for people to inspect and replay, not consumed away
		MaxAge:      DeadLetterMaxAge,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		// The dead-letter Nats-Msg-Id makes a retried dead-letter publish, or
		// two replicas dead-lettering one message, land once.
		Duplicates: MinDuplicateWindow,
	}
}

// EnsureDeadLetterStream creates or updates the stream "DLQ" (subjects
// "dlq.>", limits retention, 14 days, file storage). [Subscribe] calls it
// once per bus for consumers that dead-letter, unless it was called
// already: an explicit call counts as that once.
func (b *Bus) EnsureDeadLetterStream(ctx context.Context) (jetstream.Stream, error) {
	s, err := b.EnsureStream(ctx, DeadLetterStreamConfig(b.cfg.StreamReplicas))
	if err == nil {
		b.dlqOnce.Lock()
		b.dlqDone = true
		b.dlqOnce.Unlock()
	}
	return s, err
}

func (b *Bus) ensureDeadLetterStreamOnce(ctx context.Context) error {
	b.dlqOnce.Lock()
	done := b.dlqDone
	b.dlqOnce.Unlock()
	if done {
		return nil
	}
	_, err := b.EnsureDeadLetterStream(ctx)
	return err
}

// validateName checks a stream or consumer name: JetStream names are one
// subject token, and a name with a path separator would escape the store.
func validateName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%w: %s name is required", ErrInvalidConfig, kind)
	}
	if strings.ContainsAny(name, ".*>/\\") || strings.IndexFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}) >= 0 {
		return fmt.Errorf("%w: %s name %q may not contain '.', '*', '>', '/', '\\', white space or control characters", ErrInvalidConfig, kind, name)
	}
	return nil
}

// validatePublishSubject checks a subject to publish on: literal tokens
// only, none empty.
func validatePublishSubject(subject string) error {
	return checkSubject(subject, false)
}

// validateFilterSubject checks a consumer filter: '*' stands for one whole
// token and '>' only for the last.
func validateFilterSubject(subject string) error {
	return checkSubject(subject, true)
}

func checkSubject(subject string, wildcards bool) error {
	if subject == "" {
		return fmt.Errorf("%w: empty subject", ErrInvalidSubject)
	}
	if !utf8.ValidString(subject) {
		return fmt.Errorf("%w: subject %q is not valid UTF-8", ErrInvalidSubject, subject)
	}
	// Token by token without splitting: every publish checks its subject.
	for rest, last := subject, false; !last; {
		tok, after, found := strings.Cut(rest, ".")
		rest, last = after, !found
		switch {
		case tok == "":
			return fmt.Errorf("%w: subject %q has an empty token", ErrInvalidSubject, subject)
		case strings.IndexFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			return fmt.Errorf("%w: subject %q contains white space or a control character", ErrInvalidSubject, subject)
		case tok == "*" || tok == ">":
			if !wildcards {
				return fmt.Errorf("%w: subject %q has a wildcard; publish on a literal subject", ErrInvalidSubject, subject)
			}
			if tok == ">" && !last {
				return fmt.Errorf("%w: subject %q has '>' before its last token", ErrInvalidSubject, subject)
			}
		case strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("%w: subject %q has a wildcard inside a token", ErrInvalidSubject, subject)
		}
	}
	return nil
}
