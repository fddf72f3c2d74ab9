// Package chart renders a report's chart (sharingv1.Chart) to a PNG on the
// server, so Slack shows the same picture to every target without the CRM
// having to produce images. Rendering is pure: no I/O besides the returned
// bytes, and no system fonts (gonum's built-in Liberation fonts are used).
package chart

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"
	"unicode/utf8"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
)

const (
	// DefaultWidth and DefaultHeight read well at Slack's image preview
	// size (about 360 px high in the desktop client).
	DefaultWidth  = 800
	DefaultHeight = 500
	// MinSize and MaxSize bound each side, in pixels: smaller cannot fit a
	// title and axes, larger only costs CPU and upload time.
	MinSize = 200
	MaxSize = 2000
	// MaxCategories and MaxSeries bound rendering work and keep labels
	// legible; a CRM report chart has far fewer.
	MaxCategories = 200
	MaxSeries     = 20

	// dpi maps pixels to gonum's points; 96 makes 12 pt text 16 px high.
	dpi = 96
	// maxLabel caps titles, axis, category and legend labels, in runes.
	maxLabel = 80
)

// ErrInvalid wraps every reason a chart is refused.
var ErrInvalid = errors.New("invalid chart")

// Palette is the series (or, for pie and donut, category) colours, in
// order: distinct hues that survive JPEG-ish scaling in Slack previews.
var Palette = []color.RGBA{
	{0x4e, 0x79, 0xa7, 0xff}, // blue
	{0xf2, 0x8e, 0x2b, 0xff}, // orange
	{0xe1, 0x57, 0x59, 0xff}, // red
	{0x59, 0xa1, 0x4f, 0xff}, // green
	{0xb0, 0x7a, 0xa1, 0xff}, // purple
	{0xed, 0xc9, 0x48, 0xff}, // yellow
	{0x76, 0xb7, 0xb2, 0xff}, // teal
	{0x9c, 0x75, 0x5f, 0xff}, // brown
	{0xff, 0x9d, 0xa7, 0xff}, // pink
	{0x79, 0x70, 0x6e, 0xff}, // grey
}

func colour(i int) color.RGBA { return Palette[i%len(Palette)] }

// Validate says why a chart cannot be drawn, naming the offending part.
func Validate(c *sharingv1.Chart) error {
	if c == nil {
		return fmt.Errorf("%w: no chart", ErrInvalid)
	}
	t := c.GetType()
	if t == sharingv1.ChartType_CHART_TYPE_UNSPECIFIED || sharingv1.ChartType_name[int32(t)] == "" {
		return fmt.Errorf("%w: chart type %v is not supported", ErrInvalid, t)
	}
	n := len(c.GetCategories())
	switch {
	case n == 0:
		return fmt.Errorf("%w: no categories", ErrInvalid)
	case n > MaxCategories:
		return fmt.Errorf("%w: %d categories, at most %d", ErrInvalid, n, MaxCategories)
	case len(c.GetSeries()) == 0:
		return fmt.Errorf("%w: no series", ErrInvalid)
	case len(c.GetSeries()) > MaxSeries:
		return fmt.Errorf("%w: %d series, at most %d", ErrInvalid, len(c.GetSeries()), MaxSeries)
	case oneSeries(t) && len(c.GetSeries()) != 1:
		return fmt.Errorf("%w: a %v chart takes one series, got %d", ErrInvalid, t, len(c.GetSeries()))
	}
	for _, s := range c.GetSeries() {
		if len(s.GetValues()) != n {
			return fmt.Errorf("%w: series %q has %d values for %d categories", ErrInvalid, s.GetName(), len(s.GetValues()), n)
		}
		for i, v := range s.GetValues() {
			switch {
			case math.IsNaN(v) || math.IsInf(v, 0):
				return fmt.Errorf("%w: series %q, category %q: %v is not a number", ErrInvalid, s.GetName(), c.GetCategories()[i], v)
			case v < 0 && noNegatives(t):
				return fmt.Errorf("%w: series %q, category %q: a %v chart cannot show the negative value %v", ErrInvalid, s.GetName(), c.GetCategories()[i], t, v)
			}
		}
	}
	if oneSeries(t) && sum(c.GetSeries()[0].GetValues()) == 0 {
		return fmt.Errorf("%w: a %v chart of only zeros has nothing to draw", ErrInvalid, t)
	}
	return nil
}

func oneSeries(t sharingv1.ChartType) bool {
	return t == sharingv1.ChartType_CHART_TYPE_PIE || t == sharingv1.ChartType_CHART_TYPE_DONUT || t == sharingv1.ChartType_CHART_TYPE_FUNNEL
}

// noNegatives: a wedge, a funnel stage or a stacked segment has no meaning
// below zero.
func noNegatives(t sharingv1.ChartType) bool {
	return oneSeries(t) || t == sharingv1.ChartType_CHART_TYPE_STACKED_BAR || t == sharingv1.ChartType_CHART_TYPE_STACKED_COLUMN
}

func sum(vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += v
	}
	return s
}

// Size is the image size Render produces for c: WidthPx × HeightPx, with
// defaults for unset sides and each side clamped to MinSize..MaxSize.
func Size(c *sharingv1.Chart) (w, h int) {
	side := func(px int32, def int) int {
		if px <= 0 {
			return def
		}
		return min(max(int(px), MinSize), MaxSize)
	}
	return side(c.GetWidthPx(), DefaultWidth), side(c.GetHeightPx(), DefaultHeight)
}

// Render draws c as a PNG of Size(c). XAxisLabel names the categories and
// YAxisLabel the values, whatever the orientation; pie and donut charts
// have no axes, so no axis labels.
func Render(c *sharingv1.Chart) ([]byte, error) {
	if err := Validate(c); err != nil {
		return nil, err
	}
	w, h := Size(c)
	p := plot.New()
	p.Title.Text = clip(c.GetTitle())
	p.Title.TextStyle.Font.Size = vg.Points(16)
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = clip(c.GetXAxisLabel())
	p.Y.Label.Text = clip(c.GetYAxisLabel())
	switch c.GetType() {
	case sharingv1.ChartType_CHART_TYPE_BAR, sharingv1.ChartType_CHART_TYPE_STACKED_BAR, sharingv1.ChartType_CHART_TYPE_FUNNEL:
		p.X.Label.Text, p.Y.Label.Text = p.Y.Label.Text, p.X.Label.Text
	}
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true

	// Lengths below are in points; the canvas is w×h pixels at dpi.
	width, height := vg.Length(w)*vg.Inch/dpi, vg.Length(h)*vg.Inch/dpi
	var err error
	switch t := c.GetType(); t {
	case sharingv1.ChartType_CHART_TYPE_PIE, sharingv1.ChartType_CHART_TYPE_DONUT:
		addPie(p, &legend, c, t == sharingv1.ChartType_CHART_TYPE_DONUT)
	case sharingv1.ChartType_CHART_TYPE_FUNNEL:
		addFunnel(p, c)
	case sharingv1.ChartType_CHART_TYPE_LINE:
		err = addLines(p, &legend, c)
	default:
		err = addBars(p, &legend, c, width, height)
	}
	if err != nil {
		return nil, fmt.Errorf("building %v chart: %w", c.GetType(), err)
	}

	canvas := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(dpi))
	dc := draw.Crop(draw.New(canvas), vg.Points(8), -vg.Points(8), vg.Points(8), -vg.Points(8))
	// The legend gets its own strip on the right so it never hides data.
	if r := legend.Rectangle(dc); r.Max.X > r.Min.X {
		lw := min(r.Max.X-r.Min.X+vg.Points(12), (dc.Max.X-dc.Min.X)/3)
		p.Draw(draw.Crop(dc, 0, -lw, 0, 0))
		legend.Draw(draw.Crop(dc, dc.Max.X-dc.Min.X-lw+vg.Points(12), 0, 0, -vg.Points(40)))
	} else {
		p.Draw(dc)
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: canvas}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encoding PNG: %w", err)
	}
	return buf.Bytes(), nil
}

// clip keeps a label on one readable line.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= maxLabel {
		return s
	}
	return string([]rune(s)[:maxLabel-1]) + "…"
}

func labels(c *sharingv1.Chart) []string {
	out := make([]string, len(c.GetCategories()))
	for i, s := range c.GetCategories() {
		out[i] = clip(s)
	}
	return out
}

// categoryAxis names the categories; many labels are slanted so they do
// not run into each other.
func categoryAxis(p *plot.Plot, c *sharingv1.Chart, horizontal bool) {
	names := labels(c)
	if horizontal {
		// Reading order: the first category at the top.
		slices.Reverse(names)
		p.NominalY(names...)
		return
	}
	p.NominalX(names...)
	if len(names) > 6 {
		p.X.Tick.Label.Rotation = math.Pi / 4
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
}

// addBars draws bar (horizontal), column and their stacked forms: one
// BarChart per series, side by side or stacked on the previous one.
func addBars(p *plot.Plot, legend *plot.Legend, c *sharingv1.Chart, width, height vg.Length) error {
	t := c.GetType()
	horizontal := t == sharingv1.ChartType_CHART_TYPE_BAR || t == sharingv1.ChartType_CHART_TYPE_STACKED_BAR
	stacked := t == sharingv1.ChartType_CHART_TYPE_STACKED_BAR || t == sharingv1.ChartType_CHART_TYPE_STACKED_COLUMN
	categoryAxis(p, c, horizontal)
	grid := plotter.NewGrid()
	if horizontal {
		grid.Horizontal.Color = nil
	} else {
		grid.Vertical.Color = nil
	}
	p.Add(grid)

	// The data area is not known before drawing; ~70% of the side is a
	// close enough estimate to leave a gap between category groups.
	side := width
	if horizontal {
		side = height
	}
	group := side * 0.7 / vg.Length(len(c.GetCategories())) * 0.75
	series := c.GetSeries()
	barWidth := group
	if !stacked {
		barWidth = group / vg.Length(len(series))
	}
	var below *plotter.BarChart
	for j, s := range series {
		vals := plotter.Values(slices.Clone(s.GetValues()))
		if horizontal {
			slices.Reverse(vals)
		}
		b, err := plotter.NewBarChart(vals, barWidth)
		if err != nil {
			return fmt.Errorf("series %q: %w", s.GetName(), err)
		}
		b.Color = colour(j)
		b.LineStyle.Width = 0
		b.Horizontal = horizontal
		if stacked {
			if below != nil {
				b.StackOn(below)
			}
			below = b
		} else {
			b.Offset = (vg.Length(j) - vg.Length(len(series)-1)/2) * barWidth
		}
		p.Add(b)
		if s.GetName() != "" {
			legend.Add(clip(s.GetName()), b)
		}
	}
	return nil
}

func addLines(p *plot.Plot, legend *plot.Legend, c *sharingv1.Chart) error {
	categoryAxis(p, c, false)
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	p.Add(grid)
	for j, s := range c.GetSeries() {
		xys := make(plotter.XYs, len(s.GetValues()))
		for i, v := range s.GetValues() {
			xys[i] = plotter.XY{X: float64(i), Y: v}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("series %q: %w", s.GetName(), err)
		}
		line.Color, line.Width = colour(j), vg.Points(2)
		points.Color, points.Shape, points.Radius = colour(j), draw.CircleGlyph{}, vg.Points(3)
		p.Add(line, points)
		if s.GetName() != "" {
			legend.Add(clip(s.GetName()), line, points)
		}
	}
	// Amounts read wrong on an axis that does not start at zero.
	p.Y.Min = min(p.Y.Min, 0)
	return nil
}
