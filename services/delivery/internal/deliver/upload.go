package deliver

import (
	"context"
	"errors"
	"strings"

	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
)

// uploader uploads a file through the external flow (get URL, upload, complete), with the file id in the ledger between the upload and its sharing.
type uploader struct{ *Deliverer }

func (d uploader) execute(ctx context.Context, r *run) (Outcome, error) {
	cmd, uf := r.cmd, r.cmd.UploadFile
	if r.done {
		return r.outcome, d.finishSimple(ctx, r)
	}
	if r.channels == nil {
		var chs []string
		for _, t := range cmd.UploadTargets() {
			ch, err := d.resolve(ctx, cmd, t)
			if err != nil {
				return Outcome{}, err
			}
			if !contains(chs, ch) {
				chs = append(chs, ch)
			}
		}
		r.channels = chs
		r.channel = chs[0]
	}
	if strings.TrimSpace(uf.GetInitialComment()) != "" && !r.checked {
		if err := d.check(r, uf.GetInitialComment(), nil); err != nil {
			return Outcome{}, err
		}
	}
	token, err := d.tokens.Get(ctx, cmd.Org, cmd.Team)
	if err != nil {
		return Outcome{}, err
	}
	settled, inDoubt, err := d.claim(ctx, r, r.channel)
	if err != nil {
		return Outcome{}, err
	}
	if settled != nil {
		return *settled, nil
	}
	if inDoubt {
		if r.entry.State == StateClaimed {
			// The earlier attempt never got to sharing the file: whatever
			// it uploaded is an orphan nobody sees. Start afresh.
			if err := d.takeOver(ctx, r, LedgerRecord{State: StateClaimed, Channel: r.channel}); err != nil {
				return Outcome{}, err
			}
		} else {
			r.ours = true // completing: try to complete the same file again
			r.ambiguous = true
		}
	}

	if r.entry.State != StateCompleting {
		getKey := d.methodKey(cmd.Team, "files.getUploadURLExternal")
		var uploadURL, fileID string
		err = d.call(ctx, "files.getUploadURLExternal", []pacing.Key{getKey}, getKey, func(cctx context.Context) error {
			var err error
			uploadURL, fileID, err = d.slack.GetUploadURL(cctx, token, uf.GetFilename(), len(uf.GetContent()))
			return err
		})
		if err != nil {
			return Outcome{}, slackFailure(err, cmd, "the upload")
		}
		err = d.call(ctx, "upload", nil, pacing.Key{Name: "upload"}, func(cctx context.Context) error {
			return d.slack.Upload(cctx, token, uploadURL, uf.GetFilename(), uf.GetContent())
		})
		if err != nil {
			return Outcome{}, slackFailure(err, cmd, "the upload")
		}
		rec := r.entry.LedgerRecord
		rec.State, rec.FileIDs, rec.Channel = StateCompleting, []string{fileID}, r.channel
		if err := d.record(ctx, r, rec); err != nil {
			return Outcome{}, err
		}
	}
	fileID := r.entry.FileIDs[0]
	keys := []pacing.Key{d.methodKey(cmd.Team, "files.completeUploadExternal")}
	for _, ch := range r.channels {
		keys = append(keys, d.channelKey(cmd.Team, ch))
	}
	title := uf.GetTitle()
	if title == "" {
		title = uf.GetFilename()
	}
	err = d.claimedCall(ctx, r, "files.completeUploadExternal", keys, keys[0], func(cctx context.Context) error {
		return d.slack.CompleteUpload(cctx, token, fileID, title, r.channels, r.content.Text)
	})
	var se *SlackError
	switch {
	case err == nil:
	case r.ambiguous && errors.As(err, &se) && se.Code == "file_not_found":
		// Completing a file twice is refused: the earlier attempt did it.
		d.metrics.reconciled.WithLabelValues("found").Inc()
	default:
		if KindOf(err) == KindAmbiguous {
			r.ambiguous = true
		} else if f := slackFailure(err, cmd, "channel "+strings.Join(r.channels, ",")); f != err {
			// Refused before sharing: a new upload may be tried later.
			r.ambiguous = false
			return Outcome{}, f
		}
		return Outcome{}, err
	}
	r.done = true
	r.outcome = Outcome{Channel: r.channel, FileIDs: []string{fileID}, Duplicate: r.entry.CommandID != cmd.ID}
	return r.outcome, d.finishSimple(ctx, r)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
