package topology

// The signals service's names.

// SignalOwnerUnreachable is the subject of the report that a sales signal's
// record owner has no Slack account in the org's active teams.
func SignalOwnerUnreachable(org string) string {
	return "integration.v1." + org + ".signals.owner_unreachable"
}

// Key-value buckets of the signals service.
const (
	// BucketSignalsSettings holds each org's signals.v1.Settings under the
	// org id; every signals replica watches it into memory.
	BucketSignalsSettings = "signals_settings"
	// BucketSignalsState holds storm-control groups ("g.<hash>"), which
	// remember the signal events they held, and reported owners
	// ("u.<hash>").
	BucketSignalsState = "signals_state"
)

// Durable consumers of the signals service.
const (
	DurableSignals          = "signals-sales-signals"
	DurableSignalsDelivered = "signals-delivery-succeeded"
	DurableSignalsFailed    = "signals-delivery-failed"
)

// SalesSignals is the filter of every org's sales signals.
const SalesSignals = "crm.v1.*.signal.*"
