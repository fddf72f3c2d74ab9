package chart_test

import (
	"bytes"
	"errors"
	"flag"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	"github.com/crmslack/crmslack/services/sharing/internal/chart"
	"github.com/crmslack/crmslack/services/sharing/internal/chart/pixeltest"
)

var dump = flag.String("dump", "", "write every rendered chart as a PNG into this directory, to look at")

func series(name string, vs ...float64) *sharingv1.Series {
	return &sharingv1.Series{Name: name, Values: vs}
}

func render(tb testing.TB, c *sharingv1.Chart) image.Image {
	tb.Helper()
	b, err := chart.Render(c)
	if err != nil {
		tb.Fatalf("Render: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("decoding PNG: %v", err)
	}
	if *dump != "" {
		name := strings.NewReplacer("/", "_", " ", "_").Replace(tb.Name()) + ".png"
		if err := os.WriteFile(filepath.Join(*dump, name), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return img
}

func TestRenderEveryTypeDecodesAtRequestedSize(t *testing.T) {
	t.Parallel()
	cats := []string{"Qualification", "Needs Analysis", "Proposal", "Negotiation", "Closed Won"}
	two := []*sharingv1.Series{series("2025", 50, 40, 30, 20, 10), series("2026", 60, 45, 25, 22, 15)}
	tests := []struct {
		name  string
		chart *sharingv1.Chart
		w, h  int
	}{
		{"bar", &sharingv1.Chart{Type: sharingv1.ChartType_CHART_TYPE_BAR, Categories: cats, Series: two, WidthPx: 640, HeightPx: 360}, 640, 360},
		{"column default size", &sharingv1.Chart{Type: sharingv1.ChartType_CHART_TYPE_COLUMN, Categories: cats, Series: two}, 800, 500},
		{"stacked bar", &sharingv1.Chart{Type: sharingv1.ChartType_CHART_TYPE_STACKED_BAR, Categories: cats, Series: two, WidthPx: 1000, HeightPx: 700}, 1000, 700},
		{"stacked column clamped", &sharingv1.Chart{Type: sharingv1.ChartType_CHART_TYPE_STACKED_COLUMN, Categories: cats, Series: two, WidthPx: 50, HeightPx: 9000}, 200, 2000},
		{"line", &sharingv1.Chart{Type: sharingv1.ChartType_CHART_TYPE_LINE, Categories: cats, Series: two, WidthPx: 900, HeightPx: 450}, 900, 450},
		{"pie", &sharingv1.Chart{Type: sharingv1.ChartType_CHART_TYPE_PIE, Categories: cats, Series: two[:1], WidthPx: 600, HeightPx: 400}, 600, 400},
		{"donut", &sharingv1.Chart{Type: sharingv1.ChartType_CHART_TYPE_DONUT, Categories: cats, Series: two[:1]}, 800, 500},
		{"funnel", &sharingv1.Chart{Type: sharingv1.ChartType_CHART_TYPE_FUNNEL, Categories: cats, Series: two[:1]}, 800, 500},
		{"many categories", &sharingv1.Chart{Type: sharingv1.ChartType_CHART_TYPE_COLUMN, Categories: strings.Split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", " "),
			Series: []*sharingv1.Series{series("Revenue", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 1200000)}}, 800, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.chart.Title, tt.chart.XAxisLabel, tt.chart.YAxisLabel = "Pipeline by stage", "Stage", "Amount (EUR)"
			img := render(t, tt.chart)
			if b := img.Bounds(); b.Dx() != tt.w || b.Dy() != tt.h {
				t.Errorf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), tt.w, tt.h)
			}
			if w, h := chart.Size(tt.chart); w != tt.w || h != tt.h {
				t.Errorf("Size = %dx%d, want %dx%d", w, h, tt.w, tt.h)
			}
			if pixeltest.Count(img, chart.Palette[0]) == 0 {
				t.Error("the first series' colour is nowhere in the image")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := func() *sharingv1.Chart {
		return &sharingv1.Chart{Type: sharingv1.ChartType_CHART_TYPE_PIE, Categories: []string{"a", "b"}, Series: []*sharingv1.Series{series("s", 1, 2)}}
	}
	tests := []struct {
		name   string
		change func(*sharingv1.Chart)
		want   string
	}{
		{"no type", func(c *sharingv1.Chart) { c.Type = 0 }, "not supported"},
		{"unknown type", func(c *sharingv1.Chart) { c.Type = 99 }, "not supported"},
		{"no categories", func(c *sharingv1.Chart) { c.Categories = nil }, "no categories"},
		{"no series", func(c *sharingv1.Chart) { c.Series = nil }, "no series"},
		{"value count", func(c *sharingv1.Chart) { c.Series[0].Values = []float64{1} }, `series "s" has 1 values for 2 categories`},
		{"NaN", func(c *sharingv1.Chart) { c.Series[0].Values[1] = math.NaN() }, "not a number"},
		{"Inf", func(c *sharingv1.Chart) { c.Series[0].Values[0] = math.Inf(-1) }, "not a number"},
		{"negative pie", func(c *sharingv1.Chart) { c.Series[0].Values[0] = -1 }, "negative"},
		{"negative funnel", func(c *sharingv1.Chart) { c.Type = sharingv1.ChartType_CHART_TYPE_FUNNEL; c.Series[0].Values[0] = -1 }, "negative"},
		{"zero pie", func(c *sharingv1.Chart) { c.Series[0].Values = []float64{0, 0} }, "only zeros"},
		{"two series pie", func(c *sharingv1.Chart) { c.Series = append(c.Series, series("t", 1, 1)) }, "one series"},
		{"too many categories", func(c *sharingv1.Chart) { c.Categories = make([]string, chart.MaxCategories+1) }, "categories"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := ok()
			tt.change(c)
			err := chart.Validate(c)
			if !errors.Is(err, chart.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want ErrInvalid mentioning %q", err, tt.want)
			}
			if _, rerr := chart.Render(c); !errors.Is(rerr, chart.ErrInvalid) {
				t.Errorf("Render = %v, want ErrInvalid", rerr)
			}
		})
	}
	if err := chart.Validate(nil); !errors.Is(err, chart.ErrInvalid) {
		t.Errorf("Validate(nil) = %v", err)
	}
	neg := &sharingv1.Chart{Type: sharingv1.ChartType_CHART_TYPE_COLUMN, Categories: []string{"a"}, Series: []*sharingv1.Series{series("", -5)}}
	if err := chart.Validate(neg); err != nil {
		t.Errorf("a column chart may go below zero: %v", err)
	}
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// TestColumnPixels proves the columns stand where the data puts them:
// values [10, 0, 30] give a column at the first and third category, both on
// the same baseline, the third three times as tall, and nothing at the
// second.
func TestColumnPixels(t *testing.T) {
	t.Parallel()
	img := render(t, &sharingv1.Chart{
		Type: sharingv1.ChartType_CHART_TYPE_COLUMN, Title: "Won deals", YAxisLabel: "Count",
		Categories: []string{"North", "Centre", "South"}, Series: []*sharingv1.Series{series("Deals", 10, 0, 30)},
	})
	blue := chart.Palette[0]
	bars := pixeltest.FindBars(img, blue, true, 30)
	if len(bars) != 2 {
		t.Fatalf("found %d columns of the series colour, want 2: %+v", len(bars), bars)
	}
	first, third := bars[0], bars[1]
	// Image y grows downwards: hi is the baseline end of a column.
	if first.Hi != third.Hi {
		t.Errorf("columns stand on different baselines: y=%d and y=%d", first.Hi, third.Hi)
	}
	base := first.Hi
	if r := float64(third.Len()) / float64(first.Len()); !near(r, 3, 0.05) {
		t.Errorf("third column is %.3f× the first (%d px vs %d px), want 3×", r, third.Len(), first.Len())
	}
	unit := float64(first.Len()) / 10 // pixels per data unit
	middle := (first.Centre + third.Centre) / 2
	checks := []struct {
		x, y int
		want bool
		what string
	}{
		{first.Centre, base - 2, true, "first column just above the baseline"},
		{first.Centre, base - int(9*unit), true, "first column at 9"},
		{first.Centre, base - int(11*unit), false, "above the first column at 11"},
		{third.Centre, base - int(29*unit), true, "third column at 29"},
		{third.Centre, base - int(31*unit), false, "above the third column at 31"},
		{middle, base - 2, false, "the zero column just above the baseline"},
		{middle, base - int(5*unit), false, "the zero column at 5"},
	}
	for _, c := range checks {
		if got := pixeltest.Same(img.At(c.x, c.y), blue); got != c.want {
			t.Errorf("%s (x=%d, y=%d): series colour present = %v, want %v", c.what, c.x, c.y, got, c.want)
		}
	}
	// The three categories are evenly spaced across the plot.
	if gap := third.Centre - first.Centre; gap < img.Bounds().Dx()/3 {
		t.Errorf("first and third columns only %d px apart", gap)
	}
}

// TestBarPixels: horizontal bars [10, 0, 30], first category at the top.
func TestBarPixels(t *testing.T) {
	t.Parallel()
	img := render(t, &sharingv1.Chart{
		Type: sharingv1.ChartType_CHART_TYPE_BAR, Title: "Won deals", XAxisLabel: "Count",
		Categories: []string{"North", "Centre", "South"}, Series: []*sharingv1.Series{series("Deals", 10, 0, 30)},
	})
	blue := chart.Palette[0]
	bars := pixeltest.FindBars(img, blue, false, 30)
	if len(bars) != 2 {
		t.Fatalf("found %d bars, want 2: %+v", len(bars), bars)
	}
	top, bottom := bars[0], bars[1] // scanned top to bottom
	if top.Lo != bottom.Lo {
		t.Errorf("bars start at x=%d and x=%d, want one baseline", top.Lo, bottom.Lo)
	}
	if r := float64(bottom.Len()) / float64(top.Len()); !near(r, 3, 0.05) {
		t.Errorf("South is %.3f× North (%d px vs %d px), want 3×", r, bottom.Len(), top.Len())
	}
	middle := (top.Centre + bottom.Centre) / 2
	if pixeltest.Same(img.At(top.Lo+2, middle), blue) {
		t.Error("the zero bar (Centre) has the series colour")
	}
}

// TestStackedColumnPixels: the second series sits on top of the first.
func TestStackedColumnPixels(t *testing.T) {
	t.Parallel()
	img := render(t, &sharingv1.Chart{
		Type: sharingv1.ChartType_CHART_TYPE_STACKED_COLUMN, Categories: []string{"Q1"},
		Series: []*sharingv1.Series{series("New", 10), series("Renewal", 20)},
	})
	low := pixeltest.FindBars(img, chart.Palette[0], true, 30)
	high := pixeltest.FindBars(img, chart.Palette[1], true, 30)
	if len(low) != 1 || len(high) != 1 {
		t.Fatalf("found %d and %d segments, want 1 each", len(low), len(high))
	}
	if d := low[0].Lo - high[0].Hi; d < 0 || d > 2 {
		t.Errorf("Renewal ends at y=%d, New starts at y=%d: not stacked", high[0].Hi, low[0].Lo)
	}
	if r := float64(high[0].Len()) / float64(low[0].Len()); !near(r, 2, 0.05) {
		t.Errorf("Renewal is %.3f× New, want 2×", r)
	}
}

// TestPiePixels: the wedges' areas follow the values.
func TestPiePixels(t *testing.T) {
	t.Parallel()
	for _, typ := range []sharingv1.ChartType{sharingv1.ChartType_CHART_TYPE_PIE, sharingv1.ChartType_CHART_TYPE_DONUT} {
		img := render(t, &sharingv1.Chart{
			Type: typ, Title: "Leads by source", Categories: []string{"Web", "Referral", "Trade show"},
			Series: []*sharingv1.Series{series("Leads", 60, 30, 10)},
		})
		n := []float64{float64(pixeltest.Count(img, chart.Palette[0])), float64(pixeltest.Count(img, chart.Palette[1])), float64(pixeltest.Count(img, chart.Palette[2]))}
		total := n[0] + n[1] + n[2]
		for i, want := range []float64{0.6, 0.3, 0.1} {
			if got := n[i] / total; !near(got, want, 0.02) {
				t.Errorf("%v: wedge %d covers %.3f of the coloured area, want %.2f", typ, i, got, want)
			}
		}
		b := img.Bounds()
		if typ == sharingv1.ChartType_CHART_TYPE_DONUT && pixeltest.Count(img, chart.Palette[0]) > 0 {
			// The hole: find the pie's centre as the middle of the coloured area.
			cx, cy := centre(img)
			if r, g, bl, _ := img.At(cx, cy).RGBA(); r>>8 != 0xff || g>>8 != 0xff || bl>>8 != 0xff {
				t.Errorf("donut centre (%d,%d) of %v is not white", cx, cy, b)
			}
		}
	}
}

// centre is the centre of the bounding box of the first three palette
// colours, i.e. of the pie.
func centre(img image.Image) (int, int) {
	b := img.Bounds()
	x0, y0, x1, y1 := b.Max.X, b.Max.Y, 0, 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			px := img.At(x, y)
			if pixeltest.Same(px, chart.Palette[0]) || pixeltest.Same(px, chart.Palette[1]) || pixeltest.Same(px, chart.Palette[2]) {
				if x > b.Dx()*2/3 {
					continue // legend swatches
				}
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			}
		}
	}
	return (x0 + x1) / 2, (y0 + y1) / 2
}

// TestFunnelPixels: stages are centred on one axis, first at the top, each
// as wide as its value.
func TestFunnelPixels(t *testing.T) {
	t.Parallel()
	img := render(t, &sharingv1.Chart{
		Type: sharingv1.ChartType_CHART_TYPE_FUNNEL, Title: "Pipeline", Categories: []string{"Leads", "Deals", "Won"},
		Series: []*sharingv1.Series{series("", 100, 50, 25)},
	})
	stages := pixeltest.FindBars(img, chart.Palette[0], false, 20)
	if len(stages) != 3 {
		t.Fatalf("found %d stages, want 3: %+v", len(stages), stages)
	}
	mid := func(b pixeltest.Bar) int { return (b.Lo + b.Hi) / 2 }
	for i, want := range []float64{1, 0.5, 0.25} {
		s := stages[i]
		if d := mid(s) - mid(stages[0]); d < -1 || d > 1 {
			t.Errorf("stage %d is centred at x=%d, stage 0 at x=%d", i, mid(s), mid(stages[0]))
		}
		if r := float64(s.Len()) / float64(stages[0].Len()); !near(r, want, 0.02) {
			t.Errorf("stage %d is %.3f of the first's width, want %.2f", i, r, want)
		}
	}
}

func benchmarkRender(b *testing.B, c *sharingv1.Chart) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chart.Render(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pngs/s")
}

func BenchmarkRenderColumn(b *testing.B) {
	benchmarkRender(b, &sharingv1.Chart{
		Type: sharingv1.ChartType_CHART_TYPE_COLUMN, Title: "Revenue by month", XAxisLabel: "Month", YAxisLabel: "EUR",
		Categories: strings.Split("Jan Feb Mar Apr May Jun", " "),
		Series:     []*sharingv1.Series{series("2025", 10, 20, 30, 25, 15, 40), series("2026", 12, 22, 28, 30, 18, 45)},
	})
}

func BenchmarkRenderPie(b *testing.B) {
	benchmarkRender(b, &sharingv1.Chart{
		Type: sharingv1.ChartType_CHART_TYPE_PIE, Title: "Leads by source",
		Categories: []string{"Web", "Referral", "Trade show", "Cold call", "Partner"},
		Series:     []*sharingv1.Series{series("Leads", 40, 25, 15, 12, 8)},
	})
}
