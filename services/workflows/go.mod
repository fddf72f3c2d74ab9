module github.com/crmslack/crmslack/services/workflows

go 1.26.0

require (
	github.com/crmslack/crmslack/libs v0.0.0-00010101000000-000000000000
	github.com/crmslack/crmslack/proto v0.0.0
	github.com/slack-go/slack v0.36.0
	google.golang.org/protobuf v1.36.12
)

require github.com/gorilla/websocket v1.5.3 // indirect

replace (
	github.com/crmslack/crmslack/libs => ../../libs
	github.com/crmslack/crmslack/proto => ../../proto
)

replace (
	github.com/crmslack/crmslack/services/delivery => ../delivery
	github.com/crmslack/crmslack/services/teams => ../teams
)
