package natsauth

import (
	"maps"
	"slices"
)

// The dead-letter stream and subjects of libs/bus, which natsauth cannot
// import (bus's internal tests use testkit, which uses natsauth);
// TestDeadLettersAreTheBus keeps them equal.
const (
	deadLetterStream = "DLQ"
	deadLetterPrefix = "dlq."
)

// Needs is what one service does on NATS; its allow lists are made from it
// and from nothing else.
type Needs struct {
	// Ensures are the streams it creates or updates at start-up (its
	// service.Bus Streams and Own).
	Ensures []string
	// Consumes are its durable consumers, by stream: it may create, look
	// up, pull from and ack each, and dead-letter to dlq.<stream>.<durable>.
	// A durable "*" stands for every consumer of a stream the service alone
	// consumes and whose consumer count is configuration (delivery's
	// partitions).
	Consumes map[string][]string
	// Deletes are consumers it removes, by stream (a layout it migrates
	// from).
	Deletes map[string][]string
	// Rewinds are consumers it resets to their ack floor, by stream (a "*"
	// as in Consumes): delivery hands a new partition owner what the dead
	// one held at once.
	Rewinds map[string][]string
	// Reads are streams it reads whole: ordered consumers of any name,
	// message and direct gets (its own snapshot streams).
	Reads []string
	// Gets are streams it reads single messages of, by sequence (the dead
	// letters delivery lists and replays).
	Gets []string
	// Removes are streams it deletes single messages from, by sequence (the
	// dead letters delivery discards).
	Removes []string
	// Owns are the key-value buckets it writes (and reads, watches, purges).
	Owns []string
	// Watches are buckets it only reads and watches. It may create one
	// that does not exist yet (empty, to watch it before its owner starts)
	// but never write to it.
	Watches []string
	// Purges are streams whose subjects it purges (timers it cancels).
	Purges []string
	// Publishes are the subjects it publishes, wildcards allowed.
	Publishes []string
	// Subscribes are plain subscriptions beyond its inbox: advisories, and
	// events it follows without a consumer.
	Subscribes []string
	// Advisories are streams whose max-deliveries advisories it watches
	// for every consumer (bus.WatchMaxDeliveries), reading back the
	// messages; a durable of Consumes gets its own advisory anyway.
	Advisories []string
}

// Allow renders n as publish and subscribe allow lists (Permissions adds
// the user's inbox).
func (n Needs) Allow() (pub, sub []string) {
	api := "$JS.API."
	ensure := func(s string) {
		pub = append(pub, api+"STREAM.INFO."+s, api+"STREAM.CREATE."+s, api+"STREAM.UPDATE."+s)
	}
	// read: ordered consumers (ephemeral, named by the client), their
	// flow control, and gets of single messages.
	read := func(s string) {
		pub = append(pub, api+"STREAM.INFO."+s,
			api+"CONSUMER.CREATE."+s, api+"CONSUMER.CREATE."+s+".*", api+"CONSUMER.CREATE."+s+".*.>",
			api+"CONSUMER.INFO."+s+".*", api+"CONSUMER.MSG.NEXT."+s+".*", api+"CONSUMER.DELETE."+s+".*",
			api+"STREAM.MSG.GET."+s, api+"DIRECT.GET."+s, api+"DIRECT.GET."+s+".>",
			"$JS.FC."+s+".>")
	}
	if len(n.Consumes) > 0 {
		ensure(deadLetterStream) // bus.Subscribe ensures it before its first dead letter
	}
	for _, s := range n.Ensures {
		ensure(s)
	}
	for _, s := range slices.Sorted(maps.Keys(n.Consumes)) {
		pub = append(pub, api+"STREAM.INFO."+s)
		for _, d := range n.Consumes[s] {
			pub = append(pub,
				api+"CONSUMER.CREATE."+s+"."+d, api+"CONSUMER.CREATE."+s+"."+d+".>",
				api+"CONSUMER.INFO."+s+"."+d, api+"CONSUMER.MSG.NEXT."+s+"."+d,
				"$JS.ACK."+s+"."+d+".>",
				deadLetterPrefix+s+"."+d,
				api+"STREAM.MSG.GET."+s) // a message the server gave up on, read back to dead-letter it
			sub = append(sub, advisory(s, d))
		}
	}
	for _, s := range slices.Sorted(maps.Keys(n.Deletes)) {
		for _, d := range n.Deletes[s] {
			pub = append(pub, api+"CONSUMER.INFO."+s+"."+d, api+"CONSUMER.DELETE."+s+"."+d)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(n.Rewinds)) {
		for _, d := range n.Rewinds[s] {
			pub = append(pub, api+"STREAM.INFO."+s, api+"CONSUMER.RESET."+s+"."+d)
		}
	}
	for _, s := range n.Reads {
		read(s)
	}
	for _, s := range n.Gets {
		pub = append(pub, api+"STREAM.INFO."+s, api+"STREAM.MSG.GET."+s)
	}
	for _, s := range n.Removes {
		pub = append(pub, api+"STREAM.INFO."+s, api+"STREAM.MSG.DELETE."+s)
	}
	for _, b := range n.Owns {
		ensure("KV_" + b)
		read("KV_" + b)
		pub = append(pub, "$KV."+b+".>", api+"STREAM.PURGE.KV_"+b)
	}
	for _, b := range n.Watches {
		read("KV_" + b)
		pub = append(pub, api+"STREAM.CREATE.KV_"+b)
	}
	if len(n.Owns)+len(n.Watches) > 0 {
		pub = append(pub, api+"INFO") // the account's limits, which nats.go reads to make a bucket
	}
	for _, s := range n.Purges {
		pub = append(pub, api+"STREAM.PURGE."+s)
	}
	for _, s := range n.Advisories {
		sub = append(sub, advisory(s, "*"))
		pub = append(pub, api+"STREAM.MSG.GET."+s)
	}
	pub = append(pub, n.Publishes...)
	sub = append(sub, n.Subscribes...)
	return dedupe(pub), dedupe(sub)
}

// advisory is the max-deliveries advisory of durable d on stream s ("*"
// for all of them), which libs/bus watches to dead-letter what the server
// stopped delivering.
func advisory(s, d string) string { return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + s + "." + d }

// dedupe drops repeated subjects, keeping the first of each.
func dedupe(list []string) []string {
	seen := make(map[string]bool, len(list))
	out := list[:0]
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
