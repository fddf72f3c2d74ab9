package bus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A replica fetches no more than it has room for and tracks every message it
// holds, from the fetch that brought it until it is settled, keeping each
// alive with InProgress once half its AckWait has run. nats.go's Consume
// holds a buffer the caller cannot see, so a message waiting there behind a
// slow handler aged towards its AckWait unrenewed: AckWait had to be long
// enough for the slowest wait, and a killed replica's messages waited that
// long before another replica got them. With every held message renewed,
// AckWait only bounds how long a dead replica's messages wait.
const (
	// fetchWait is how long one fetch waits for messages on the server; an
	// idle replica asks again at this pace.
	fetchWait = time.Second
	// fetchRetry is the pause after a fetch the server refused.
	fetchRetry = time.Second
)

// Fetcher pulls one durable consumer's messages for a replica: no more at
// once than Limit, each held (and kept alive) until it is released. [Subscribe]
// uses one; a consumer with its own dispatching (lanes by key) uses one too.
type Fetcher struct {
	limit   int
	ackWait time.Duration

	mu   sync.Mutex
	cons jetstream.Consumer
	msgs map[*Held]struct{}
	room chan struct{} // signalled when a held message is released
}

// Held is a message a [Fetcher] holds until [Fetcher.Release].
type Held struct {
	Msg     jetstream.Msg
	touched time.Time // its delivery or last InProgress: AckWait runs from it
	// until is when its handler's time runs out (zero while it waits): a
	// handler hung past it, ignoring its ctx, is no longer kept alive, so
	// the server redelivers its message after AckWait.
	until time.Time
}

// NewFetcher returns a fetcher of cons holding at most limit messages of a
// consumer whose AckWait is ackWait.
func NewFetcher(cons jetstream.Consumer, limit int, ackWait time.Duration) *Fetcher {
	return &Fetcher{limit: max(limit, 1), ackWait: ackWait, cons: cons, msgs: make(map[*Held]struct{}, limit), room: make(chan struct{}, 1)}
}

// SetConsumer makes the next fetches use cons (a re-created consumer).
func (f *Fetcher) SetConsumer(cons jetstream.Consumer) {
	f.mu.Lock()
	f.cons = cons
	f.mu.Unlock()
}

// Run fetches until ctx ends, handing each message to deliver in order; a
// message waiting behind a deliver that blocks is held and kept alive
// meanwhile. report is told each fetch's error, nil when it succeeded. Cancelling ctx cancels the fetch in flight, and the server
// delivers nothing more to it.
func (f *Fetcher) Run(ctx context.Context, deliver func(*Held), report func(error)) {
	for {
		room := f.waitRoom(ctx.Done())
		if room == 0 || ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		cons := f.cons
		f.mu.Unlock()
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := cons.Fetch(room, jetstream.FetchContext(fctx))
		if err == nil {
			// Each message is held as it arrives, even while deliver blocks
			// on an earlier one (the channel has room for the whole fetch).
			arrived := make(chan *Held, room)
			go func() {
				defer close(arrived)
				for msg := range batch.Messages() {
					arrived <- f.hold(msg, time.Now())
				}
			}()
			for h := range arrived {
				deliver(h)
			}
			err = batch.Error()
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
			report(nil)
			continue
		}
		report(err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(fetchRetry):
		}
	}
}

// KeepAlive renews the held messages whose AckWait is half gone until done
// is closed. It runs beside Run and outlives it while held messages drain.
func (f *Fetcher) KeepAlive(done <-chan struct{}) {
	t := time.NewTicker(max(f.ackWait/5, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			for _, m := range f.due(now) {
				_ = m.InProgress() // a failure leaves the message to its AckWait, as before
			}
		}
	}
}

func (f *Fetcher) hold(m jetstream.Msg, now time.Time) *Held {
	h := &Held{Msg: m, touched: now}
	f.mu.Lock()
	f.msgs[h] = struct{}{}
	f.mu.Unlock()
	return h
}

// Release forgets h once its message is settled.
func (f *Fetcher) Release(h *Held) {
	f.mu.Lock()
	delete(f.msgs, h)
	f.mu.Unlock()
	select {
	case f.room <- struct{}{}:
	default:
	}
}

// Started records that h's handler runs until at the latest.
func (f *Fetcher) Started(h *Held, until time.Time) {
	f.mu.Lock()
	h.until = until
	f.mu.Unlock()
}

// Progressed records an InProgress sent for h by its handler, whose
// deadline moved to until.
func (f *Fetcher) Progressed(h *Held, until time.Time) {
	f.mu.Lock()
	h.touched, h.until = time.Now(), until
	f.mu.Unlock()
}

func (f *Fetcher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.msgs)
}

// due returns the held messages whose AckWait is half gone, marked renewed.
func (f *Fetcher) due(now time.Time) []jetstream.Msg {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []jetstream.Msg
	for h := range f.msgs {
		if now.Sub(h.touched) >= f.ackWait/2 && (h.until.IsZero() || now.Before(h.until)) {
			h.touched = now
			out = append(out, h.Msg)
		}
	}
	return out
}

// waitRoom returns how many messages the next fetch may bring: it waits
// while more than half the limit is held, so fetches are not one message
// each, and returns 0 once done is closed.
func (f *Fetcher) waitRoom(done <-chan struct{}) int {
	for {
		if n := f.count(); n <= f.limit/2 {
			return f.limit - n
		}
		select {
		case <-f.room:
		case <-done:
			return 0
		}
	}
}

// pump fetches the subscription's messages into its work queue until Stop.
func (s *Subscription) pump() {
	defer close(s.pumped)
	s.fetcher.Run(s.pumpCtx, func(h *Held) { s.work <- queued{h} }, s.fetchReport)
}

// fetchReport keeps readiness in step with the fetches: a failure makes the
// subscription unhealthy (and asks the watchdog to look), the next success
// clears it.
func (s *Subscription) fetchReport(err error) {
	if err == nil {
		if s.fetchErr.Swap(false) {
			s.unhealthy.Store(nil)
		}
		return
	}
	s.fetchErr.Store(true)
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.setUnhealthy("consumer deleted on the server: " + err.Error())
		s.log.Error("consumer deleted on the server; re-creating it", "error", err)
	} else {
		s.setUnhealthy("fetching from the consumer failed: " + err.Error())
		s.log.Warn("fetching messages failed", "error", err)
	}
	s.check()
}
