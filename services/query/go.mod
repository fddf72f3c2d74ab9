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
