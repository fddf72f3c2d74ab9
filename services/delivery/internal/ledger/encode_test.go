package ledger

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzEncodeIsJSONMarshal: the hand-written encoding is json.Marshal's,
// byte for byte, for any strings and times.
func FuzzEncodeIsJSONMarshal(f *testing.F) {
	f.Add("done", "cmd-1", "delivery-a", int64(1764752400123456789), "C1", "1.000002", "https://x.slack.com/archives/C1/p1000002", "F1", 2)
	f.Add("claimed", "a\"b\\c\n\t\x01<>&", "\u2028\u2029é", int64(0), "", "", "", "", 0)
	f.Add("x", "\xff\xfe", "ok\x7f", int64(-62135596800000000), "ch", "", "p", "\u00e9\U0001F600", 1)
	f.Fuzz(func(t *testing.T, state, cmd, owner string, at int64, ch, ts, pl, file string, files int) {
		rec := Record{
			State: State(state), CommandID: cmd, Owner: owner, ClaimedAt: time.Unix(0, at).UTC(),
			Channel: ch, TS: ts, Permalink: pl,
		}
		for range files % 4 {
			rec.FileIDs = append(rec.FileIDs, file)
		}
		if at%3 == 0 {
			rec.ClaimedAt = rec.ClaimedAt.In(time.FixedZone("x", 3600))
		}
		want, wantErr := json.Marshal(&rec)
		got, err := encode(&rec)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("error %v, json.Marshal's %v", err, wantErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}
