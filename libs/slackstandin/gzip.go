package slackstandin

import (
	"compress/gzip"
	"net/http"
	"strings"
	"sync"
)

// Slack compresses a Web API reply when the request accepts gzip (Go's
// transport asks for it unless told not to); the stand-in does too, so that
// what decoding a compressed reply costs a client shows in its tests and
// benches.

var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// acceptsGzip reports whether r's Accept-Encoding lists gzip.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for enc := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(enc), ";")
			if strings.EqualFold(name, "gzip") {
				return true
			}
		}
	}
	return false
}

// gzipResponse compresses what is written to it; Close ends the stream.
type gzipResponse struct {
	http.ResponseWriter
	gz *gzip.Writer
}

func newGzipResponse(w http.ResponseWriter) *gzipResponse {
	gz := gzipWriters.Get().(*gzip.Writer)
	gz.Reset(w)
	w.Header()["Vary"] = varyAcceptEncoding
	w.Header()["Content-Encoding"] = gzipEncoding
	return &gzipResponse{ResponseWriter: w, gz: gz}
}

var (
	varyAcceptEncoding = []string{"Accept-Encoding"}
	gzipEncoding       = []string{"gzip"}
)

func (g *gzipResponse) Write(p []byte) (int, error) { return g.gz.Write(p) }

func (g *gzipResponse) Close() {
	_ = g.gz.Close()
	g.gz.Reset(nil)
	gzipWriters.Put(g.gz)
}
