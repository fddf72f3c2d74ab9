package query_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportDirection keeps the layers apart: the domain (language,
// binding, projection, users, rendering) does no I/O and knows no port or
// adapter; the app knows the domain only; ports and adapters are leaves.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	const internal = "github.com/crmslack/crmslack/services/query/internal/"
	io := []string{"github.com/nats-io/", "google.golang.org/grpc", "github.com/crmslack/crmslack/libs/bus", "github.com/crmslack/crmslack/libs/rpc"}
	outer := []string{internal + "app", internal + "grpcapi", internal + "late", internal + "feed", internal + "snapshot", internal + "teamsclient"}
	forbidden := map[string][]string{
		"slash":      append(append([]string{}, io...), outer...),
		"filter":     append(append([]string{}, io...), outer...),
		"projection": append(append([]string{}, io...), outer...),
		"crmusers":   append(append([]string{}, io...), outer...),
		"render":     append(append([]string{}, io...), outer...),
		"seedset":    append(append([]string{}, io...), outer...),
		"app":        append(append([]string{}, io...), outer[1:]...),
	}
	for pkg, bad := range forbidden {
		dir := filepath.Join("internal", pkg)
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, b := range bad {
					if strings.HasPrefix(path, b) {
						t.Errorf("internal/%s/%s imports %s", pkg, e.Name(), path)
					}
				}
			}
		}
	}
}
