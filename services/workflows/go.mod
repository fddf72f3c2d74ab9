module github.com/crmslack/crmslack/services/workflows

go 1.26.0

require (
	github.com/crmslack/crmslack/proto v0.0.0
	google.golang.org/protobuf v1.36.12
)

replace (
	github.com/crmslack/crmslack/libs => ../../libs
	github.com/crmslack/crmslack/proto => ../../proto
)

replace (
	github.com/crmslack/crmslack/services/delivery => ../delivery
	github.com/crmslack/crmslack/services/teams => ../teams
)
