package testkit

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// PlainLibs are the shared packages a plain (no I/O) domain may import: they
// are plain Go themselves.
var PlainLibs = []string{"github.com/crmslack/crmslack/libs/fault"}

// Layer is an import rule for the non-test Go files of one directory.
type Layer struct {
	// Dir is the package directory, relative to the test's package.
	Dir string
	// Plain: the standard library only, plus PlainLibs and Allow.
	Plain bool
	// Allow are import path prefixes a Plain layer may import besides
	// (its own domain's other plain packages).
	Allow []string
	// Forbid are import path prefixes the layer must not import (adapters,
	// drivers).
	Forbid []string
}

// CheckLayers is the one layering check every service runs as a test: each
// layer's files import nothing their rule forbids, so the import direction
// (ports and adapters → app → domain) cannot drift.
func CheckLayers(t testing.TB, layers ...Layer) {
	t.Helper()
	for _, l := range layers {
		entries, err := os.ReadDir(l.Dir)
		if err != nil {
			t.Fatalf("layer %s: %v", l.Dir, err)
		}
		seen := 0
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			seen++
			path := filepath.Join(l.Dir, name)
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatalf("layer %s: %v", l.Dir, err)
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if why := l.refuses(p); why != "" {
					t.Errorf("%s imports %s: %s", path, p, why)
				}
			}
		}
		if seen == 0 {
			t.Errorf("layer %s has no Go files: is the rule stale?", l.Dir)
		}
	}
}

func (l Layer) refuses(path string) string {
	has := func(prefixes []string) bool {
		return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(path, p) })
	}
	if has(l.Forbid) {
		return "forbidden in this layer"
	}
	std := !strings.Contains(strings.SplitN(path, "/", 2)[0], ".")
	if l.Plain && !std && !has(PlainLibs) && !has(l.Allow) {
		return "this layer is plain Go (standard library and " + strings.Join(PlainLibs, ", ") + " only)"
	}
	return ""
}
