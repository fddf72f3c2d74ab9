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

// importWindow is how many publishes an import keeps awaiting their acks:
// enough to hide the round trip (a million rows at tens of thousands a
// second), under the bus's limit of unacknowledged async publishes, so a
// publish never stalls on it.
const importWindow = 2048

// importResult is what publishImport did.
type importResult struct {
	published, duplicates int
	failed                []rowError // by line, at most maxReported
	failures              int
	// tried is how many rows were handed to the bus, the one it refused
	// included (every one unless a failure stopped the import).
	tried int
}

// publishImport publishes the event of each row (eventOf's) on subject
// asynchronously, in file order, with up to importWindow awaiting acks,
// collecting every ack; a failed row stops the import: what is in flight
// is still collected, so the answer says exactly which rows were published
// and which failed, by line.
func publishImport(ctx context.Context, b *bus.Bus, subject string, eventOf func(row) *crmv1.RecordUpserted, rows []row, prog *progress) importResult {
	var res importResult
	// The publishes awaiting their acks, oldest first, in a ring: row i's
	// future is at i mod importWindow.
	ring := make([]jetstream.PubAckFuture, importWindow)
	collect := func(i int) {
		f := ring[i%importWindow]
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				res.duplicates++
			} else {
				res.published++
			}
		case err := <-f.Err():
			res.fail(rows[i].Line, err)
		case <-ctx.Done():
			res.fail(rows[i].Line, fmt.Errorf("no ack: %w", ctx.Err()))
		}
		prog.update(res.published+res.duplicates+res.failures, rows[i].Line)
	}
	oldest, sent := 0, 0 // rows [oldest, sent) await their acks
	for i, rw := range rows {
		if res.failures > 0 || ctx.Err() != nil {
			break
		}
		if sent-oldest == importWindow {
			collect(oldest)
			oldest++
		}
		res.tried = i + 1
		f, err := b.PublishAsync(ctx, subject, eventOf(rw))
		if err != nil {
			res.fail(rows[i].Line, err)
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

func (r *importResult) fail(line int, err error) {
	r.failures++
	if len(r.failed) < maxReported {
		r.failed = append(r.failed, rowError{Line: line, Msg: err.Error()})
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
		fmt.Fprintf(&b, "\n%s:%d: %s", name, e.Line, e.Msg)
	}
	if r.failures > len(r.failed) {
		fmt.Fprintf(&b, "\n… and %d more", r.failures-len(r.failed))
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
	p.done = done
	if !p.tty {
		if done%p.every == 0 && done < p.total {
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
