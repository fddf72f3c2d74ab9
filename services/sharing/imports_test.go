package sharing

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportDirection keeps the layers apart: the domain (internal/share)
// is plain Go, and the app layer (internal/app) knows its ports, never the
// adapters that implement them or their drivers.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	rules := []struct {
		dir       string
		forbidden []string
		stdOnly   bool
	}{
		{dir: "internal/share", stdOnly: true},
		{dir: "internal/app", forbidden: []string{
			"github.com/crmslack/crmslack/services/sharing/internal/mongorepo",
			"github.com/crmslack/crmslack/services/sharing/internal/remote",
			"github.com/crmslack/crmslack/services/sharing/internal/grpcapi",
			"github.com/crmslack/crmslack/services/sharing/internal/inbound",
			"github.com/crmslack/crmslack/services/sharing/internal/access",
			"go.mongodb.org/", "google.golang.org/grpc", "github.com/nats-io/",
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
				if r.stdOnly && strings.Contains(strings.SplitN(path, "/", 2)[0], ".") {
					t.Errorf("%s imports %s: the domain is plain Go", f, path)
				}
				for _, bad := range r.forbidden {
					if strings.HasPrefix(path, bad) {
						t.Errorf("%s imports %s", f, path)
					}
				}
			}
		}
	}
}
