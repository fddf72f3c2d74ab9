module github.com/crmslack/crmslack/deploy/crmctl

go 1.26.0
