package verify

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	v, err := New(func() time.Time { return now }, 0, secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("token=x&team_id=T0ACME0001&command=%2Fzcrm&text=leads")
	ts := now.Unix()
	good := Sign(secret, ts, body)
	tsStr := strconv.FormatInt(ts, 10)
	cases := []struct {
		name      string
		timestamp string
		signature string
		body      []byte
		want      error
	}{
		{"valid", tsStr, good, body, nil},
		{"valid at the edge of the window", strconv.FormatInt(ts-300, 10), Sign(secret, ts-300, body), body, nil},
		{"valid from a clock ahead", strconv.FormatInt(ts+300, 10), Sign(secret, ts+300, body), body, nil},
		{"stale", strconv.FormatInt(ts-301, 10), Sign(secret, ts-301, body), body, ErrStale},
		{"from the future", strconv.FormatInt(ts+301, 10), Sign(secret, ts+301, body), body, ErrStale},
		{"forged with another secret", tsStr, Sign("another-secret", ts, body), body, ErrMismatch},
		{"body changed", tsStr, good, append([]byte(nil), append(body, '&')...), ErrMismatch},
		{"timestamp changed, signature kept", strconv.FormatInt(ts-1, 10), good, body, ErrMismatch},
		{"no signature", tsStr, "", body, ErrMissing},
		{"no timestamp", "", good, body, ErrMissing},
		{"v1 scheme", tsStr, "v1=" + good[3:], body, ErrMalformed},
		{"uppercase hex is fine", tsStr, "v0=" + strings.ToUpper(good[3:]), body, nil},
		{"short signature", tsStr, good[:40], body, ErrMalformed},
		{"non-hex signature", tsStr, "v0=" + strings.Repeat("z", 64), body, ErrMalformed},
		{"signed timestamp", "-" + tsStr, good, body, ErrMalformed},
		{"timestamp with space", " " + tsStr, good, body, ErrMalformed},
		{"huge timestamp", "99999999999999999999", good, body, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if err := v.Verify(c.timestamp, c.signature, c.body); !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
}

func TestVerifyDuringSecretRotation(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	v, _ := New(func() time.Time { return now }, 0, "new-secret", secret)
	body := []byte("x")
	for _, s := range []string{"new-secret", secret} {
		if err := v.Verify(strconv.FormatInt(now.Unix(), 10), Sign(s, now.Unix(), body), body); err != nil {
			t.Errorf("secret %q: %v", s[:3], err)
		}
	}
	if _, err := New(nil, 0); err == nil {
		t.Error("no secret accepted")
	}
	if _, err := New(nil, 0, ""); err == nil {
		t.Error("empty secret accepted")
	}
}

func TestErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	v, _ := New(func() time.Time { return now }, 0, secret)
	body := []byte("x")
	err := v.Verify(strconv.FormatInt(now.Unix(), 10), Sign("other", now.Unix(), body), body)
	want := Sign(secret, now.Unix(), body)
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), want[3:]) {
		t.Fatalf("error leaks: %v", err)
	}
}

func FuzzParseSignature(f *testing.F) {
	f.Add("v0=" + strings.Repeat("a", 64))
	f.Add("v0=")
	f.Add("v1=abc")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		sig, err := ParseSignature(h)
		if err != nil {
			return
		}
		if len(h) != 67 || h[:3] != "v0=" {
			t.Fatalf("accepted %q", h)
		}
		if got := Sign("k", 0, nil); len(got) != len(h) {
			t.Fatal("length mismatch")
		}
		_ = sig
	})
}

func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	v, _ := New(func() time.Time { return now }, 0, secret)
	body := []byte("payload=%7B%7D")
	f.Add(strconv.FormatInt(now.Unix(), 10), Sign(secret, now.Unix(), body), body)
	f.Add("1800000000", "v0=00", []byte{})
	f.Add("", "", []byte("x"))
	f.Fuzz(func(t *testing.T, ts, sig string, b []byte) {
		err := v.Verify(ts, sig, b)
		if err != nil {
			return
		}
		// Accepted: it must be exactly what Slack would have sent.
		n, perr := ParseTimestamp(ts)
		if perr != nil {
			t.Fatalf("accepted unparsable timestamp %q", ts)
		}
		if d := now.Sub(time.Unix(n, 0)); d > DefaultSkew || d < -DefaultSkew {
			t.Fatalf("accepted stale timestamp %q", ts)
		}
		if !strings.EqualFold(sig, Sign(secret, n, b)) {
			t.Fatalf("accepted a signature that is not the body's: %q", sig)
		}
	})
}
