module github.com/crmslack/crmslack/deploy/local

go 1.26.0
