package signals

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportDirection keeps the layers apart: the domain (matrix, burst) is
// plain Go over the contracts' types, and the app layer knows its ports,
// never the adapters that implement them or their drivers.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	const internal = "github.com/crmslack/crmslack/services/signals/internal/"
	adapters := []string{
		internal + "settingskv", internal + "statekv", internal + "owners", internal + "access",
		internal + "grpcapi", internal + "inbound", internal + "lanes",
		"github.com/nats-io/", "google.golang.org/grpc", "go.mongodb.org/",
	}
	rules := []struct {
		dir     string
		allowed func(path string) bool
	}{
		{"internal/matrix", func(p string) bool {
			return !strings.Contains(strings.SplitN(p, "/", 2)[0], ".") || strings.HasPrefix(p, "github.com/crmslack/crmslack/proto/gen/go/")
		}},
		{"internal/burst", func(p string) bool { return !strings.Contains(strings.SplitN(p, "/", 2)[0], ".") }},
		{"internal/app", func(p string) bool {
			for _, bad := range adapters {
				if strings.HasPrefix(p, bad) {
					return false
				}
			}
			return true
		}},
	}
	for _, r := range rules {
		files, err := filepath.Glob(filepath.Join(r.dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", r.dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if !r.allowed(path) {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}
}
