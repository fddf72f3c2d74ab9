package chart

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
)

// gonum has no pie or funnel plotter; these draw them with vg paths.

// legendSwatch is a legend thumbnail: a square of one colour.
type legendSwatch struct{ c color.Color }

func (s legendSwatch) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(s.c, []vg.Point{c.Min, {X: c.Min.X, Y: c.Max.Y}, c.Max, {X: c.Max.X, Y: c.Min.Y}})
}

// pie draws wedges clockwise from 12 o'clock, one per category; a donut
// covers the centre with the background.
type pie struct {
	values []float64
	hole   float64 // inner radius as a fraction of the outer one
}

func (pp pie) Plot(c draw.Canvas, _ *plot.Plot) {
	total := sum(pp.values)
	centre := c.Center()
	r := min(c.Max.X-c.Min.X, c.Max.Y-c.Min.Y) / 2
	angle := math.Pi / 2
	for i, v := range pp.values {
		if v == 0 {
			continue
		}
		sweep := -2 * math.Pi * v / total
		var path vg.Path
		path.Move(centre)
		path.Arc(centre, r, angle, sweep)
		path.Close()
		c.SetColor(colour(i))
		c.Fill(path)
		angle += sweep
	}
	if pp.hole > 0 {
		hr := r * vg.Length(pp.hole)
		var path vg.Path
		path.Move(vg.Point{X: centre.X + hr, Y: centre.Y})
		path.Arc(centre, hr, 0, 2*math.Pi)
		path.Close()
		c.SetColor(color.White)
		c.Fill(path)
	}
}

func addPie(p *plot.Plot, legend *plot.Legend, c *sharingv1.Chart, donut bool) {
	p.HideAxes()
	p.X.Label.Text, p.Y.Label.Text = "", ""
	vals := c.GetSeries()[0].GetValues()
	pp := pie{values: vals}
	if donut {
		pp.hole = 0.5
	}
	p.Add(pp)
	total := sum(vals)
	for i, name := range labels(c) {
		legend.Add(fmt.Sprintf("%s (%s%%)", name, strconv.FormatFloat(100*vals[i]/total, 'f', 1, 64)), legendSwatch{colour(i)})
	}
}

// funnel draws one bar per stage, centred, first stage at the top, with
// its value written to the right.
type funnel struct {
	values []float64
	label  draw.TextStyle
}

func (f funnel) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	n := len(f.values)
	for i, v := range f.values {
		y := float64(n - 1 - i)
		c.FillPolygon(colour(0), []vg.Point{
			{X: trX(-v / 2), Y: trY(y - 0.4)},
			{X: trX(-v / 2), Y: trY(y + 0.4)},
			{X: trX(v / 2), Y: trY(y + 0.4)},
			{X: trX(v / 2), Y: trY(y - 0.4)},
		})
		c.FillText(f.label, vg.Point{X: trX(v/2) + vg.Points(4), Y: trY(y)}, strconv.FormatFloat(v, 'f', -1, 64))
	}
}

// DataRange leaves room on the right of the widest stage for its value.
func (f funnel) DataRange() (xmin, xmax, ymin, ymax float64) {
	m := slices.Max(f.values)
	return -m / 2, m * 0.7, -0.5, float64(len(f.values)) - 0.5
}

func addFunnel(p *plot.Plot, c *sharingv1.Chart) {
	categoryAxis(p, c, true)
	// Values are written on the stages; a value axis would only add noise.
	p.HideX()
	p.X.Label.Text = ""
	label := p.Y.Tick.Label
	label.XAlign, label.YAlign = draw.XLeft, draw.YCenter
	p.Add(funnel{values: c.GetSeries()[0].GetValues(), label: label})
}
