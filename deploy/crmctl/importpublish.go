package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// Batches: an import publishes crm.v1.RecordsImported, up to importBatch
// records each and at most importBatchBytes of them (NATS refuses a
// message over its max_payload, 1 MiB by default), so the bus's
// per-message costs (storing, delivering, acknowledging, the envelope and
// the schema) are paid once per few hundred records rather than per
// record. importWindow batches await their acks at once: enough to hide
// the round trip, and thousands of records, under the bus's limit of
// unacknowledged async publishes (it counts messages).
const (
	importBatch      = 500
	importBatchBytes = 768 << 10
	importWindow     = 8
)

// importResult is what publishImport did.
type importResult struct {
	published, duplicates int
	failed                []batchError // at most maxReported
	failures              int
	// tried is how many rows were handed to the bus, those of a batch it
	// refused included (every one unless a failure stopped the import).
	tried int
}

// batchError is a batch that was not stored: the lines of its first and
// last rows, and why.
type batchError struct {
	Line, Last int
	Msg        string
}

// batch is the rows [from, to) of one RecordsImported.
type batch struct{ from, to int }

// batches cuts rows into batches of at most importBatch records and
// importBatchBytes of their encodings; a row larger than that alone is a
// batch of its own (which NATS then refuses, naming that row).
func batches(rows []row) []batch {
	var out []batch
	from, size := 0, 0
	for i, rw := range rows {
		n := len(rw.Data) + 8 // the field's tag and length
		if i > from && (i-from == importBatch || size+n > importBatchBytes) {
			out = append(out, batch{from, i})
			from, size = i, 0
		}
		size += n
	}
	if from < len(rows) {
		out = append(out, batch{from, len(rows)})
	}
	return out
}

// publishImport publishes rows as batches (eventOf makes each batch's
// event) on subject asynchronously, in file order, with up to importWindow
// awaiting acks, collecting every ack; a failed batch stops the import:
// what is in flight is still collected, so the answer says exactly which
// rows were stored and which failed, by line.
func publishImport(ctx context.Context, b *bus.Bus, subject string, eventOf func([]row) *crmv1.RecordsImported, rows []row, prog *progress) importResult {
	var res importResult
	bs := batches(rows)
	// The publishes awaiting their acks, oldest first, in a ring: batch i's
	// future is at i mod importWindow.
	ring := make([]jetstream.PubAckFuture, importWindow)
	done := 0
	collect := func(i int) {
		bt, f := bs[i], ring[i%importWindow]
		n := bt.to - bt.from
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				res.duplicates += n
			} else {
				res.published += n
			}
		case err := <-f.Err():
			res.fail(rows, bt, err)
		case <-ctx.Done():
			res.fail(rows, bt, fmt.Errorf("no ack: %w", ctx.Err()))
		}
		done += n
		prog.update(done, rows[bt.to-1].Line)
	}
	oldest, sent := 0, 0 // batches [oldest, sent) await their acks
	for i, bt := range bs {
		if res.failures > 0 || ctx.Err() != nil {
			break
		}
		if sent-oldest == importWindow {
			collect(oldest)
			oldest++
		}
		res.tried = bt.to
		f, err := b.PublishAsync(ctx, subject, eventOf(rows[bt.from:bt.to]))
		if err != nil {
			res.fail(rows, bt, err)
			break
		}
		ring[i%importWindow] = f
		sent = i + 1
	}
	for ; oldest < sent; oldest++ {
		collect(oldest)
	}
	prog.finish()
	return res
}

// fail records a batch that was not stored: its rows failed, reported by
// the batch's first line and, for more than one row, its last.
func (r *importResult) fail(rows []row, bt batch, err error) {
	r.failures += bt.to - bt.from
	if len(r.failed) < maxReported {
		r.failed = append(r.failed, batchError{Line: rows[bt.from].Line, Last: rows[bt.to-1].Line, Msg: err.Error()})
	}
}

// err is nil when every row was stored, else which rows failed and what
// became of the rest.
func (r importResult) err(name string, total int) error {
	if r.failures == 0 && r.tried == total {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d rows stored (%d already were); %d failed", r.published+r.duplicates, total, r.duplicates, r.failures)
	for _, e := range r.failed {
		if e.Last > e.Line {
			fmt.Fprintf(&b, "\n%s:%d-%d: %s", name, e.Line, e.Last, e.Msg)
		} else {
			fmt.Fprintf(&b, "\n%s:%d: %s", name, e.Line, e.Msg)
		}
	}
	if rest := total - r.tried; rest > 0 {
		fmt.Fprintf(&b, "\nthe last %d rows were not sent", rest)
	}
	b.WriteString("\nRunning the same import again is safe: rows already stored are dropped as duplicates")
	return errors.New(b.String())
}

// progress reports an import's progress: on a terminal, one line redrawn
// in place with a bar, the rate and the time left; elsewhere (a log, a
// pipe), a line every so many rows.
type progress struct {
	w            io.Writer
	tty          bool
	every, total int
	start, drawn time.Time
	done         int
}

func newProgress(w io.Writer, every, total int) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && isTerminal(f), every: every, total: total, start: time.Now()}
}

// update records that done rows have their acks, the last one at line.
func (p *progress) update(done, line int) {
	before := p.done
	p.done = done
	if !p.tty {
		// Acks come a batch at a time: a line whenever another multiple
		// of every is passed.
		if done/p.every > before/p.every && done < p.total {
			fmt.Fprintf(p.w, "%d of %d rows published (up to line %d)\n", done, p.total, line)
		}
		return
	}
	if now := time.Now(); now.Sub(p.drawn) >= 100*time.Millisecond {
		p.drawn = now
		p.draw(now)
	}
}

func (p *progress) draw(now time.Time) {
	const width = 30
	elapsed := now.Sub(p.start).Seconds()
	rate := float64(p.done) / max(elapsed, 1e-3)
	eta := "--"
	if rate > 0 && p.done < p.total {
		eta = (time.Duration(float64(p.total-p.done)/rate) * time.Second).Round(time.Second).String()
	}
	fill := width * p.done / max(p.total, 1)
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %3d%% %d/%d rows  %.0f rows/s  ETA %s",
		strings.Repeat("=", fill), strings.Repeat(" ", width-fill), 100*p.done/max(p.total, 1), p.done, p.total, rate, eta)
}

// finish draws the last state and ends the line.
func (p *progress) finish() {
	if p.tty {
		p.draw(time.Now())
		fmt.Fprintln(p.w)
	}
}
