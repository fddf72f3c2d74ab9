package oauthstate

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var key = []byte(strings.Repeat("k", 32))

func TestIssueDecode(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c, err := New(func() time.Time { return now }, 0, key)
	if err != nil {
		t.Fatal(err)
	}
	raw, st, cookie, err := c.Issue("org1", "u1", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, cookie) {
		t.Fatal("the state carries the cookie value itself")
	}
	got, err := c.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got != st || got.OrgID != "org1" || got.AdminID != "u1" || got.CookieName() != CookiePrefix+st.ID {
		t.Fatalf("got %+v want %+v", got, st)
	}
	if err := got.CheckBrowser(cookie); err != nil {
		t.Fatalf("own browser refused: %v", err)
	}
	_, _, otherCookie, _ := c.Issue("org1", "u1", "Ada")
	for name, ck := range map[string]string{"no cookie": "", "another browser's cookie": otherCookie, "cookie tampered": cookie + "x"} {
		if err := got.CheckBrowser(ck); !errors.Is(err, ErrWrongBrowser) {
			t.Errorf("%s: %v", name, err)
		}
	}
	late, _ := New(func() time.Time { return now.Add(DefaultTTL) }, 0, key)
	if _, err := late.Decode(raw); !errors.Is(err, ErrExpired) {
		t.Errorf("expired: %v", err)
	}
	other, _ := New(nil, 0, []byte(strings.Repeat("o", 32)))
	if _, err := other.Decode(raw); !errors.Is(err, ErrSignature) {
		t.Errorf("other key: %v", err)
	}
	for _, bad := range []string{"", "s1.", raw[:len(raw)-2], strings.Replace(raw, "s1.", "t1.", 1)} {
		if _, err := c.Decode(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	raw2, st2, _, _ := c.Issue("org1", "u1", "Ada")
	if raw2 == raw || st2.ID == st.ID {
		t.Fatal("states repeat")
	}
}

func FuzzDecode(f *testing.F) {
	c, _ := New(nil, time.Hour, key)
	raw, _, cookie, _ := c.Issue("org1", "u1", "")
	f.Add(raw, cookie)
	f.Add("s1..", "")
	f.Add("s1.e30.AAAA", "x")
	f.Fuzz(func(t *testing.T, in, ck string) {
		st, err := c.Decode(in)
		if err != nil {
			return
		}
		if st.OrgID == "" || st.AdminID == "" || len(st.ID) != 32 {
			t.Fatalf("accepted an incomplete state %q", in)
		}
		if st.CheckBrowser(ck) == nil && browserHash(ck) != st.Browser {
			t.Fatal("browser check passed for a cookie that does not match")
		}
	})
}
