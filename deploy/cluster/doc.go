// Package cluster runs crmslack's distributed mode on one machine, every
// part its own OS process on loopback, with security on: a three-node
// nats-server cluster with JetStream (streams and buckets R3, routes over
// mutual TLS, the users of libs/natsauth), FerretDB on its own PostgreSQL
// (TLS with client certificates, a password per login), the Slack stand-in,
// and every service from services/<name>/cmd as replicas configured by
// environment as in production. In front of each service's replicas is a
// TCP balancer playing the platform's load balancer (a Kubernetes Service):
// clients dial one address and a dead replica's connections move to a live
// one.
//
// `make cluster` runs it until Ctrl-C (cmd/cluster); the tests drive it
// (crash, takeover, exactly once, order). See docs/operations.md.
package cluster
