// Package pixeltest reads rendered charts back for tests: which pixels
// have a series' colour, and where solid bars of it stand. The chart
// package's own tests and the end-to-end test (which reads the PNG back
// from the Slack stand-in) share it, so "the bars are where the data puts
// them" means the same thing in both.
package pixeltest

import (
	"image"
	"image/color"
)

// Same reports whether a has exactly b's RGB.
func Same(a color.Color, b color.RGBA) bool {
	r, g, bl, _ := a.RGBA()
	return uint8(r>>8) == b.R && uint8(g>>8) == b.G && uint8(bl>>8) == b.B
}

// Count counts the pixels of colour c.
func Count(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if Same(img.At(x, y), c) {
				n++
			}
		}
	}
	return n
}

// Bar is a solid run of one colour found in the image: its extent along
// the value axis (Lo..Hi, inclusive) and its centre across it.
type Bar struct{ Lo, Hi, Centre int }

// Len is the bar's length along the value axis, in pixels.
func (b Bar) Len() int { return b.Hi - b.Lo + 1 }

// FindBars finds bars of colour c. For columns (vertical) it scans x, for
// horizontal bars y; a line counts when its longest solid run of c is at
// least minRun pixels, which leaves out legend swatches and text. Adjacent
// lines form one bar.
func FindBars(img image.Image, c color.RGBA, vertical bool, minRun int) []Bar {
	b := img.Bounds()
	outer, inner := b.Dx(), b.Dy()
	at := func(o, i int) bool { return Same(img.At(o, i), c) }
	if !vertical {
		outer, inner = b.Dy(), b.Dx()
		at = func(o, i int) bool { return Same(img.At(i, o), c) }
	}
	var bars []Bar
	start, lo, hi := -1, 0, 0
	for o := 0; o <= outer; o++ {
		first, last := -1, -1
		if o < outer {
			first, last = longestRun(inner, func(i int) bool { return at(o, i) })
		}
		if last-first+1 < minRun || first < 0 {
			if start >= 0 {
				bars = append(bars, Bar{Lo: lo, Hi: hi, Centre: (start + o - 1) / 2})
				start = -1
			}
			continue
		}
		if start < 0 {
			start, lo, hi = o, first, last
		}
		lo, hi = min(lo, first), max(hi, last)
	}
	return bars
}

// longestRun returns the ends of the longest run of i in [0, n) where
// has(i) holds, or -1, -1.
func longestRun(n int, has func(int) bool) (first, last int) {
	first, last = -1, -1
	runStart := -1
	for i := 0; i <= n; i++ {
		if i < n && has(i) {
			if runStart < 0 {
				runStart = i
			}
			continue
		}
		if runStart >= 0 && (first < 0 || i-1-runStart > last-first) {
			first, last = runStart, i-1
		}
		runStart = -1
	}
	return first, last
}
