// Package bus is crmslack's event bus on NATS JetStream: typed protobuf
// events published with de-duplication, and typed handlers on durable pull
// consumers with retries, back-off, dead-lettering and metrics.
//
// # Topology
//
// Streams and consumers are declared in code and reconciled at start-up
// ([Bus.EnsureStream], [Bus.EnsureDeadLetterStream], [Subscribe]); every call
// is idempotent and updates a changed configuration in place. A stream's
// Duplicates window must be at least [MinDuplicateWindow] (10 minutes): the
// event id is the Nats-Msg-Id, so a re-published event is dropped only while
// it is inside that window. Slack retries an event delivery for about five
// minutes and our own publishers retry around that, so a window shorter than
// ten minutes would let a retried event through twice.
//
// # Publishing
//
// Every event is a protobuf message with a crmslack.common.v1.Envelope
// ([Event]). [Bus.Publish] refuses an envelope without event_id or org_id
// ([ErrInvalidEnvelope]), uses the event id as Nats-Msg-Id, names the type in
// the Crmslack-Type header and carries the W3C trace context in the
// traceparent / tracestate headers (and in the envelope, when it has none).
// [Bus.PublishBatch] publishes asynchronously and waits for every ack; a
// failed batch can be retried whole, as the stream drops what already landed.
//
// # The handler contract
//
// A consumer is one [Handler] for one event type on one durable consumer:
//
//	func(ctx context.Context, ev *crmv1.RecordUpserted) error
//
// Its result decides what happens to the message:
//
//   - nil: the event is done; the message is acknowledged (Ack).
//   - any other error is temporary: the message is negatively acknowledged
//     with a delay (NakWithDelay) taken from [ConsumerSpec.BackOff] by delivery
//     number, plus up to 20 % jitter, or from the error itself when it was
//     made with [RetryAfter] (e.g. a Slack rate limit's Retry-After).
//   - an error that means the bus or store is unavailable right now
//     ([Unavailable]: a timeout, no responders while JetStream elects a
//     leader, a 503, a reconnect) re-runs the handler in place every ~0.5 s,
//     restarting AckWait with InProgress, until it passes, fails otherwise or
//     its time budget runs out: an outage neither climbs the back-off nor
//     counts a delivery, so it never dead-letters a message.
//   - an error made with [Permanent], a payload that cannot be decoded (or
//     whose Crmslack-Type is not the handler's type, or whose envelope has no
//     event_id or org_id), and a failure of the last allowed delivery
//     (NumDelivered >= MaxDeliver) are dead-lettered: the original payload and
//     headers are published to "dlq.<stream>.<durable>" with Crmslack-Dlq-*
//     headers saying why, then the message is terminated (TermWithReason).
//     If the dead-letter publish fails, the message is nak'ed instead, so
//     nothing is lost.
//   - a panic is recovered, logged with its stack, counted (outcome "panic")
//     and treated as a temporary error.
//
// Delivery is at least once: a handler may see an event again (a lost ack, a
// replica stopped mid-flight, an ack-wait expiry). Handlers must be
// idempotent, keyed by the envelope's event_id (a create-only insert that
// treats a duplicate key as "already done").
//
// The handler's ctx carries the trace context from the message (a child span
// of the publisher's), the message's metadata ([MessageInfo]) and a deadline
// [ConsumerSpec.HandlerTimeout] after it started; a handler that needs
// longer calls [InProgress], which resets the server's ack timer and extends
// the deadline by the same budget.
//
// A replica fetches only as many messages as it has room for and keeps each
// one it holds alive (InProgress once half its AckWait has run) while it
// waits for a handler and while its handler runs, up to the handler's
// deadline. So AckWait (10 s by default) is no budget for handlers: it is how
// long the messages of a replica that died wait before another replica gets
// them.
//
// With [ConsumerSpec.Concurrency] > 1 a replica runs that many handlers at
// once, and messages are no longer handled in stream order. Ordering across
// replicas comes from partitioning subjects, never from one consumer.
//
// # Durable names are a contract
//
// The durable name identifies a consumer's position in the stream. Renaming
// it creates a new consumer that starts from the beginning of the stream
// (DeliverPolicy all) and replays every retained event; changing it is a
// migration, not a refactoring. Replicas of one service share the durable
// name, and JetStream hands each message to only one of them.
//
// A durable deleted on the server (by an operator, or lost with its stream)
// would leave a subscription connected and receiving nothing. Each
// subscription therefore checks its consumer every
// [Config.ConsumerCheckInterval]: while it is missing [Subscription.Healthy]
// reports why (libs/service turns that into a failing /readyz), and on the
// next check it is re-created with the same configuration. The new durable
// starts from what the stream still holds, so nothing is lost; handlers are
// idempotent, so what comes again is harmless.
//
// # Dead letters and max deliveries
//
// Dead letters go to the stream "DLQ" (subjects "dlq.>", kept 14 days). Each
// carries Nats-Msg-Id "dlq:<stream>:<durable>:<stream seq>", so a retried
// dead-letter publish, or the same message dead-lettered by two replicas, is
// stored once. A subscription also watches the server's max-deliveries
// advisory for its consumer: a message whose last delivery timed out (a hung
// handler, a crashed replica) is fetched from the stream and dead-lettered
// too, instead of silently staying unprocessed.
//
// A service that runs a consumer of its own instead of [Subscribe] (the
// delivery service's ordered lanes) dead-letters through [Bus.DeadLetter]
// and [Bus.DeadLetterStored], which write the same headers under the same
// Nats-Msg-Id, and terminates with a [HeaderSafe] reason.
package bus
