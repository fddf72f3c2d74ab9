module github.com/crmslack/crmslack/services/query

go 1.26.0

require (
	github.com/crmslack/crmslack/libs v0.0.0
	github.com/crmslack/crmslack/proto v0.0.0
	google.golang.org/protobuf v1.36.12
)

replace (
	github.com/crmslack/crmslack/libs => ../../libs
	github.com/crmslack/crmslack/proto => ../../proto
)

// The end-to-end tests (e2e) run the services a /zcrm command crosses: the
// team registry, the gateway and the Slack egress.
require (
	github.com/crmslack/crmslack/services/delivery v0.0.0
	github.com/crmslack/crmslack/services/gateway v0.0.0
	github.com/crmslack/crmslack/services/teams v0.0.0
)

replace (
	github.com/crmslack/crmslack/services/delivery => ../delivery
	github.com/crmslack/crmslack/services/gateway => ../gateway
	github.com/crmslack/crmslack/services/teams => ../teams
)
