// Package partition spreads the Slack commands over P partitions so that
// several delivery replicas can share the work while each channel keeps its
// order.
//
// # Subjects
//
// Publishers send commands to slack.out.v1.<org>.<team>.<kind>. The SLACK_OUT
// stream's subject transform stores each one under
//
//	slack.out.v1.<org>.<team>.<kind>.<partition>
//
// where partition is the server's {{partition(P,1,2)}} (the transform is
// libs/topology's SlackOutTransform): FNV-1a (32 bit) of the org and team
// tokens, modulo P. Every command of one team, so of each of its channels,
// lands in one partition. The transform runs in the server,
// so publishers need not know P; [Of] computes the same number client-side.
//
// # Consumers
//
// Partition k has its own durable consumer, [Durable](k) = "delivery-p<k>",
// filtered on [Filter](k). A replica consumes only the partitions whose
// lease it holds (see [Coordinator]), so one partition is consumed by one
// replica at a time and a channel's commands are carried out in order.
//
// Commands stored without a partition token (published while the stream had
// no transform: before the upgrade to partitions, or after a service
// reconciled SLACK_OUT with an older topology) are caught by the consumer
// [UnpartitionedDurable] and moved into their partition; see [Move].
package partition

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/topology"
)

// DefaultCount is the number of partitions unless configured otherwise
// (DELIVERY_PARTITIONS): libs/topology's SlackOutPartitions, so up to eight
// replicas can share the work. Changing it moves teams between partitions
// and is a migration (docs/configuration.md).
const DefaultCount = topology.SlackOutPartitions

// MaxCount bounds the number of partitions (consumers, leases).
const MaxCount = 256

// Subject layout of SLACK_OUT.
const (
	prefix = "slack.out.v1."
	// TransformSource matches a command as publishers send it: the source
	// of topology.SlackOutTransform.
	TransformSource = prefix + "*.*.*"
	// UnpartitionedFilter matches a command stored without a partition.
	UnpartitionedFilter = TransformSource
)

// Durable names of the command consumers: contracts (renaming one replays
// its partition's commands; the ledger keeps them from being posted again,
// but each would be reported again).
const (
	// DurablePrefix + k is partition k's consumer.
	DurablePrefix = "delivery-p"
	// UnpartitionedDurable moves commands stored without a partition.
	UnpartitionedDurable = "delivery-unpartitioned"
	// LegacyDurable is the single consumer of the one-instance layout; its
	// position is where UnpartitionedDurable starts, then it is removed.
	LegacyDurable = "delivery-commands"
)

// CountOf reads the number of partitions from a stream's transform
// (topology.SlackOutTransform); 0 when it has none (or not ours).
func CountOf(sc jetstream.StreamConfig) int {
	t := sc.SubjectTransform
	if t == nil || t.Source != TransformSource {
		return 0
	}
	_, rest, ok := strings.Cut(t.Destination, "{{partition(")
	if !ok {
		return 0
	}
	n, _, _ := strings.Cut(rest, ",")
	p, err := strconv.Atoi(n)
	if err != nil {
		return 0
	}
	return p
}

// Of is the partition of a team's commands among p, as the server computes
// {{partition(p,1,2)}}: FNV-1a 32 of the org and team tokens, concatenated,
// modulo p.
func Of(org, team string, p int) int {
	if p <= 0 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(org))
	_, _ = h.Write([]byte(team))
	return int(h.Sum32() % uint32(p))
}

// Filter is partition k's consumer filter: topology.SlackOutPartition(k).
func Filter(k int) string { return topology.SlackOutPartition(k) }

// Durable is partition k's consumer name.
func Durable(k int) string { return DurablePrefix + strconv.Itoa(k) }

// FromDurable returns the partition of a consumer name, or false.
func FromDurable(name string) (int, bool) {
	n, ok := strings.CutPrefix(name, DurablePrefix)
	if !ok {
		return 0, false
	}
	k, err := strconv.Atoi(n)
	if err != nil || k < 0 || strconv.Itoa(k) != n {
		return 0, false
	}
	return k, true
}

// Partitioned returns the subject a command stored unpartitioned as subject
// belongs under, for p partitions.
func Partitioned(subject string, p int) (string, error) {
	toks := strings.Split(subject, ".")
	if len(toks) != 6 || !strings.HasPrefix(subject, prefix) {
		return "", fmt.Errorf("subject %q is not slack.out.v1.<org>.<team>.<kind>", subject)
	}
	return subject + "." + strconv.Itoa(Of(toks[3], toks[4], p)), nil
}
