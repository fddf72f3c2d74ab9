// Package lanes consumes the command stream with one durable pull consumer
// and hands each command to a lane: commands of one lane (one channel, one
// response_url, ...) are carried out one at a time in stream order; lanes
// run independently, so a channel held back by its rate limit or a Slack
// outage holds back nothing else.
//
// Messages are acknowledged one by one when their command is settled, so a
// lane can keep its messages while the others go on. Held messages are kept
// alive with InProgress before AckWait runs out. MaxAckPending bounds how
// many are held at once; it must be large enough for the deepest backlog a
// single channel may build, or that backlog would fill it and stall the
// rest (see the service's DELIVERY_MAX_IN_FLIGHT).
//
// # Pulling no more than the lanes need
//
// Holding a message is not free: the server rewrites each consumer's
// pending set about ten times a second, and every held message is heap
// the collector marks, so a backlog pulled whole makes every post cost
// more the deeper the backlog. The dispatcher therefore stops pulling
// while Window messages that arrived less than Fresh ago wait in their
// lanes, and pulls again once a quarter of them have started or aged, or
// what has freed within 20 ms (one pull for each freed place would be a
// pull per post). A message that has waited
// longer than Fresh (a lane held back by its rate limit or an outage) no
// longer counts, so a slow channel's backlog is still pulled through to
// the other channels behind it, Window per Fresh at the least.
//
// # Order across restarts
//
// Lanes are sorted by stream sequence. A graceful stop naks every held
// message in sequence order, so JetStream redelivers them first and in
// order. After a crash the dead process's messages come back only when
// their AckWait expires; newer messages could otherwise overtake them. So
// when the consumer has messages pending at start-up, no lane starts until
// those have been redelivered (counted against the pending count read at
// start, bounded by AckWait plus a margin), and then each lane starts with
// its oldest message. Ordering therefore holds as long as one dispatcher
// at a time consumes a consumer: the service runs one per partition of the
// stream and hands a partition from replica to replica only through a lease
// (see the partition package); a new owner's gate waits for what the old
// one held. The service rewinds a partition's consumer to its ack floor
// when it takes the lease, so those come back at once and the gate is the
// fallback for a server that cannot rewind.
package lanes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Item is one held message.
type Item struct {
	Seq  uint64
	Lane string
	// Stored is when the stream stored it (the command's enqueue time).
	Stored time.Time
	// Payload is what Decode returned.
	Payload any

	started bool      // guarded by the dispatcher's mutex
	fresh   bool      // counted in the dispatcher's waiting; guarded by its mutex
	arrived time.Time // the first delivery to this process

	d         *Dispatcher
	mu        sync.Mutex
	msg       jetstream.Msg
	delivered uint64    // deliveries of the message, 1 on the first
	touched   time.Time // the last delivery or progress ack: AckWait runs from it
	kept      bool      // settled by Process, acknowledged later (Keep)
}

// Keep tells the dispatcher that Process settles the item asynchronously:
// after Process returns true the lane goes on, but the item stays held
// (kept alive, its redeliveries recognised as its own) until release is
// called, once its message is acknowledged or handed back. Call it from
// Process, before it returns.
func (it *Item) Keep() (release func()) {
	it.mu.Lock()
	it.kept = true
	it.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			it.d.mu.Lock()
			if it.d.held[it.Seq] == it {
				delete(it.d.held, it.Seq)
			}
			it.d.mu.Unlock()
		})
	}
}

func (it *Item) isKept() bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.kept
}

// Msg is the newest delivery of the item's message; settle it through this.
func (it *Item) Msg() jetstream.Msg {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.msg
}

// Delivered counts deliveries of the item's message, 1 on the first; a
// redelivery raises it while the settler may be reading it.
func (it *Item) Delivered() uint64 {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.delivered
}

func (it *Item) setMsg(m jetstream.Msg, delivered uint64) {
	it.mu.Lock()
	defer it.mu.Unlock()
	it.msg, it.delivered, it.touched = m, delivered, time.Now()
}

// due returns the message if its AckWait has run for at least age since it
// was last delivered or kept alive, and marks it kept alive at now.
func (it *Item) due(now time.Time, age time.Duration) jetstream.Msg {
	it.mu.Lock()
	defer it.mu.Unlock()
	if now.Sub(it.touched) < age {
		return nil
	}
	it.touched = now
	return it.msg
}

// Decode turns a message into a lane name and a payload; an error means the
// message cannot be handled at all, and Reject is called with it.
type Decode func(msg jetstream.Msg) (lane string, payload any, err error)

// Process carries an item out and settles its message (ack or term). It
// returns false when it stopped before settling (ctx ended); the item is
// then handed back to JetStream.
type Process func(ctx context.Context, it *Item) bool

// Reject settles a message Decode refused (dead letter and term).
type Reject func(ctx context.Context, msg jetstream.Msg, err error)

// Config configures a Dispatcher.
type Config struct {
	// AckWait is the consumer's AckWait; a held message gets an InProgress
	// once half of it has run since its delivery or its last InProgress
	// (checked every AckWait/6, so never later than about 2/3 of it).
	AckWait time.Duration
	// Prefetch is how many messages a pull asks for. Default 256.
	Prefetch int
	// Window and Fresh bound the pulling (see the package doc): no more
	// messages are taken while Window of those that arrived less than
	// Fresh ago wait in their lanes. Defaults 2 × Prefetch and 5s.
	Window int
	Fresh  time.Duration
	// DrainTimeout bounds the wait for lanes to finish their current
	// command when stopping. Default 30s.
	DrainTimeout time.Duration
	Decode       Decode
	Process      Process
	Reject       Reject
	Logger       *slog.Logger
	// Name labels the gauges (the consumer's durable name): one process may
	// run several dispatchers.
	Name       string
	Registerer prometheus.Registerer
}

// Dispatcher runs the lanes of one consumer.
type Dispatcher struct {
	cfg Config
	log *slog.Logger

	workCtx  context.Context
	stopWork context.CancelFunc
	workers  sync.WaitGroup

	mu       sync.Mutex
	held     map[uint64]*Item
	lanes    map[string]*lane
	stopping bool
	gateOpen bool
	gateSeq  uint64
	gateWant int
	gateSeen map[uint64]bool
	// fresh is the messages that arrived less than Config.Fresh ago, in
	// arrival order (some started since: pruned from the front), waiting
	// how many of them have not started; room is signalled when one starts.
	fresh   []*Item
	waiting int
	room    chan struct{}

	heldGauge, lanesGauge prometheus.Gauge
	gaugeVecs             []*prometheus.GaugeVec
}

type lane struct {
	name    string
	queue   []*Item // sorted by Seq
	running bool
}

// New returns a dispatcher.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 256
	}
	if cfg.Window <= 0 {
		cfg.Window = 2 * cfg.Prefetch
	}
	if cfg.Fresh <= 0 {
		cfg.Fresh = 5 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.AckWait <= 0 {
		return nil, errors.New("lanes: AckWait is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		cfg: cfg, log: cfg.Logger,
		held: map[uint64]*Item{}, lanes: map[string]*lane{}, gateSeen: map[uint64]bool{},
		room: make(chan struct{}, 1),
	}
	held := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "crmslack", Subsystem: "delivery", Name: "held_messages",
		Help: "Command messages held unacknowledged, waiting in a lane or being delivered, by consumer.",
	}, []string{"consumer"})
	active := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "crmslack", Subsystem: "delivery", Name: "active_lanes",
		Help: "Lanes (channels, response URLs, ...) with commands waiting or in progress, by consumer.",
	}, []string{"consumer"})
	for _, v := range []**prometheus.GaugeVec{&held, &active} {
		if cfg.Registerer == nil {
			break
		}
		if err := cfg.Registerer.Register(*v); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			existing, ok := are.ExistingCollector.(*prometheus.GaugeVec)
			if !ok {
				return nil, fmt.Errorf("lanes: metric registered with another type: %w", err)
			}
			*v = existing
		}
	}
	d.gaugeVecs = []*prometheus.GaugeVec{held, active}
	d.heldGauge, d.lanesGauge = held.WithLabelValues(cfg.Name), active.WithLabelValues(cfg.Name)
	d.workCtx, d.stopWork = context.WithCancel(context.Background())
	return d, nil
}

// Run consumes cons until ctx ends, then stops gracefully: no new messages,
// lanes finish the command they are on (Slack calls already started are
// completed and recorded), and every other held message is nak'ed in stream
// order for immediate redelivery.
func (d *Dispatcher) Run(ctx context.Context, cons jetstream.Consumer) error {
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("reading consumer info: %w", err)
	}
	d.mu.Lock()
	if info.NumAckPending > 0 {
		// A previous process died holding messages: wait for them.
		d.gateSeq, d.gateWant = info.Delivered.Stream, info.NumAckPending
		d.log.InfoContext(ctx, "messages pending from a previous run; lanes start once they are redelivered",
			"pending", info.NumAckPending, "up_to_seq", info.Delivered.Stream)
		time.AfterFunc(d.cfg.AckWait+2*time.Second, d.openGate)
	} else {
		d.gateOpen = true
	}
	d.mu.Unlock()

	pumpCtx, stopPump := context.WithCancel(context.Background())
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		d.pump(pumpCtx, cons)
	}()
	hb := time.NewTicker(max(d.cfg.AckWait/6, 100*time.Millisecond))
	defer hb.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-hb.C:
			d.heartbeat()
		}
	}
	return d.stop(stopPump, pumped)
}

// fetchWait bounds one fetch: how long an idle consumer's pull waits.
const fetchWait = 5 * time.Second

// pump fetches messages until ctx ends, each fetch for no more than there
// is room for. Fetches rather than Consume, whose pulls run ahead of the
// taking: a message the server has delivered but the dispatcher not taken
// would age towards its AckWait unheld and unrenewed.
func (d *Dispatcher) pump(ctx context.Context, cons jetstream.Consumer) {
	for {
		room := d.waitRoom(ctx.Done())
		if ctx.Err() != nil {
			return
		}
		fctx, cancel := context.WithTimeout(ctx, fetchWait)
		batch, err := cons.Fetch(room, jetstream.FetchContext(fctx))
		if err == nil {
			for msg := range batch.Messages() {
				d.onMsg(msg)
			}
			err = batch.Error()
		}
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		default:
			d.log.Warn("fetching commands failed", "err", err)
			select { // not a busy loop while the server refuses
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// waitRoom returns how many messages the next fetch may take, at most
// Prefetch, once a quarter of the Window is free of fresh messages, or
// whatever is free once some place has been free for gatherWait (or at
// once while the start-up gate is closed: it needs every message held
// before; or 1 when the pump is stopping: done). Not as soon as one place
// is free: with a backlog a place frees as each post starts, and fetching
// each message on its own cost a pull request, its timers and its reply
// subscription per post (~0.5 KB). Not until a quarter is free either: at
// Slack's pace a quarter of the window frees in seconds, and a command
// behind it waited that long.
func (d *Dispatcher) waitRoom(done <-chan struct{}) int {
	least := max(1, min(d.cfg.Prefetch, d.cfg.Window/4))
	var gathered time.Time // when gathering room began: some was free, not enough
	var timer *time.Timer  // one for the call: the loop turns once per started post
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		d.mu.Lock()
		now := time.Now()
		d.pruneLocked(now)
		if !d.gateOpen {
			d.mu.Unlock()
			return d.cfg.Prefetch
		}
		room := d.cfg.Window - d.waiting
		if room > 0 && gathered.IsZero() {
			gathered = now
		}
		if room >= least || (room > 0 && now.Sub(gathered) >= gatherWait) {
			d.mu.Unlock()
			return min(room, d.cfg.Prefetch)
		}
		wait := d.cfg.Fresh - now.Sub(d.fresh[0].arrived) // the oldest fresh one ages
		if room > 0 {
			wait = min(wait, gatherWait-now.Sub(gathered))
		}
		d.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait) // Go 1.23 timers: no stale tick after Reset
		}
		select {
		case <-d.room:
		case <-timer.C:
		case <-done:
			return 1
		}
	}
}

// gatherWait bounds how long free places are gathered into one fetch: the
// most a command waits for its fetch because of it.
const gatherWait = 20 * time.Millisecond

// pruneLocked drops from the front of fresh the messages started or older
// than Fresh.
func (d *Dispatcher) pruneLocked(now time.Time) {
	for len(d.fresh) > 0 {
		it := d.fresh[0]
		if it.fresh && now.Sub(it.arrived) < d.cfg.Fresh {
			return
		}
		d.unfreshLocked(it)
		d.fresh[0] = nil
		d.fresh = d.fresh[1:]
	}
}

// unfreshLocked stops counting it as waiting.
func (d *Dispatcher) unfreshLocked(it *Item) {
	if !it.fresh {
		return
	}
	it.fresh = false
	d.waiting--
	select {
	case d.room <- struct{}{}:
	default:
	}
}

// stop is the graceful part of Run.
func (d *Dispatcher) stop(stopPump context.CancelFunc, pumped <-chan struct{}) error {
	stopPump()
	<-pumped
	d.mu.Lock()
	d.stopping = true
	d.mu.Unlock()
	d.stopWork() // waits (pacing, back-off) end now; calls in flight finish
	done := make(chan struct{})
	go func() { d.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.cfg.DrainTimeout):
		d.log.Warn("lanes still busy after the drain timeout; their messages will be redelivered after AckWait")
	}
	d.mu.Lock()
	items := make([]*Item, 0, len(d.held))
	for _, it := range d.held {
		if !it.started {
			items = append(items, it)
		}
	}
	d.mu.Unlock()
	slices.SortFunc(items, func(a, b *Item) int { return compare(a.Seq, b.Seq) })
	for _, it := range items {
		_ = it.Msg().Nak()
	}
	d.log.Info("lanes stopped", "consumer", d.cfg.Name, "handed_back", len(items))
	for _, v := range d.gaugeVecs {
		v.DeleteLabelValues(d.cfg.Name)
	}
	return nil
}

func compare(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// heartbeat keeps alive the held messages whose AckWait is half gone. Not
// every held message at every beat: a deep backlog is held for minutes, and
// each progress ack costs the server a consumer state update.
func (d *Dispatcher) heartbeat() {
	now := time.Now()
	d.mu.Lock()
	msgs := make([]jetstream.Msg, 0, len(d.held))
	for _, it := range d.held {
		if m := it.due(now, d.cfg.AckWait/2); m != nil {
			msgs = append(msgs, m)
		}
	}
	d.heldGauge.Set(float64(len(d.held)))
	d.lanesGauge.Set(float64(len(d.lanes)))
	d.mu.Unlock()
	// In slices, so that a deep backlog's progress acks do not fill the
	// connection all at once ahead of everything else on it.
	for i, m := range msgs {
		_ = m.InProgress()
		if i%heartbeatSlice == heartbeatSlice-1 {
			time.Sleep(heartbeatPause)
		}
	}
}

// A heartbeat sends heartbeatSlice progress acks, then pauses: 100,000
// held messages take about a second.
const (
	heartbeatSlice = 1000
	heartbeatPause = 10 * time.Millisecond
)

func (d *Dispatcher) openGate() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gateOpen {
		return
	}
	d.gateOpen = true
	d.gateSeen = nil
	d.log.Info("lanes starting", "held", len(d.held))
	for _, l := range d.lanes {
		d.startLocked(l)
	}
}

func (d *Dispatcher) onMsg(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		d.log.Error("message without JetStream metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	seq := md.Sequence.Stream
	d.mu.Lock()
	if it, ok := d.held[seq]; ok {
		// Redelivered while held (a missed heartbeat): keep the newest
		// delivery's reply subject, handle it once.
		it.setMsg(msg, md.NumDelivered)
		d.mu.Unlock()
		return
	}
	stopping := d.stopping
	d.mu.Unlock()
	if stopping {
		_ = msg.Nak()
		return
	}
	name, payload, err := d.cfg.Decode(msg)
	if err != nil {
		d.cfg.Reject(d.workCtx, msg, err)
		return
	}
	now := time.Now()
	it := &Item{d: d, msg: msg, touched: now, arrived: now, fresh: true, Seq: seq, Lane: name, delivered: md.NumDelivered, Stored: md.Timestamp, Payload: payload}

	d.mu.Lock()
	defer d.mu.Unlock()
	d.held[seq] = it
	d.fresh = append(d.fresh, it)
	d.waiting++
	l := d.lanes[name]
	if l == nil {
		l = &lane{name: name}
		d.lanes[name] = l
	}
	i, _ := slices.BinarySearchFunc(l.queue, seq, func(x *Item, s uint64) int { return compare(x.Seq, s) })
	if i < len(l.queue) && l.queue[0].started && i == 0 {
		d.log.Warn("an older message arrived while a newer one of its lane is in progress; order within the lane is broken",
			"lane", name, "seq", seq, "in_progress", l.queue[0].Seq)
		i = 1
	}
	l.queue = slices.Insert(l.queue, i, it)
	if !d.gateOpen {
		if seq <= d.gateSeq {
			d.gateSeen[seq] = true
		}
		if len(d.gateSeen) >= d.gateWant {
			d.gateOpen = true
			d.gateSeen = nil
			d.log.Info("messages of the previous run are back; lanes starting", "held", len(d.held))
			for _, l := range d.lanes {
				d.startLocked(l)
			}
		}
		return
	}
	d.startLocked(l)
}

// startLocked starts l's worker if it has work and none.
func (d *Dispatcher) startLocked(l *lane) {
	if l.running || len(l.queue) == 0 || d.stopping {
		return
	}
	l.running = true
	d.workers.Add(1)
	go d.runLane(l)
}

func (d *Dispatcher) runLane(l *lane) {
	defer d.workers.Done()
	for {
		d.mu.Lock()
		if len(l.queue) == 0 || d.stopping {
			l.running = false
			if len(l.queue) == 0 {
				delete(d.lanes, l.name)
			}
			d.mu.Unlock()
			return
		}
		it := l.queue[0]
		it.started = true
		d.unfreshLocked(it)
		d.mu.Unlock()

		settled := d.process(it)

		d.mu.Lock()
		if settled {
			switch i := slices.Index(l.queue, it); {
			case i == 0: // the usual case: O(1), where a Delete would shift the whole backlog
				l.queue[0] = nil
				l.queue = l.queue[1:]
			case i > 0:
				l.queue = slices.Delete(l.queue, i, i+1)
			}
			if !it.isKept() {
				delete(d.held, it.Seq)
			}
		} else {
			it.started = false // handed back at stop
		}
		d.mu.Unlock()
		if !settled {
			d.mu.Lock()
			l.running = false
			d.mu.Unlock()
			return
		}
	}
}

// process runs Process, recovering a panic: the item is handed back with a
// delay and left out of its lane, so the lane and the process go on.
func (d *Dispatcher) process(it *Item) (settled bool) {
	defer func() {
		if p := recover(); p != nil {
			d.log.Error("processing a command panicked; handing it back", "seq", it.Seq, "lane", it.Lane,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			_ = it.Msg().NakWithDelay(d.cfg.AckWait)
			settled = true // out of the lane: the redelivery comes back as new
		}
	}()
	return d.cfg.Process(d.workCtx, it)
}

// Held reports how many messages are held (for tests).
func (d *Dispatcher) Held() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.held)
}
