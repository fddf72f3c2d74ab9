package bus

// Configured is configured, for the external tests: libs/bus's own tests
// may not import testkit (testkit → devpki → natsauth → topology → bus).
var Configured = configured
