package installticket

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	keyA = []byte(strings.Repeat("a", 32))
	keyB = []byte(strings.Repeat("b", 32))
)

func TestIssueVerify(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, err := NewSigner(clock, keyA)
	if err != nil {
		t.Fatal(err)
	}
	raw, issued, err := s.Issue(Ticket{OrgID: "org1", AdminID: "u1", AdminName: "Ada", TeamHint: "T1"}, DefaultTTL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.OrgID != "org1" || got.AdminID != "u1" || got.AdminName != "Ada" || got.TeamHint != "T1" || got.Nonce != issued.Nonce || len(got.Nonce) != 32 {
		t.Fatalf("got %+v", got)
	}
	raw2, _, _ := s.Issue(Ticket{OrgID: "org1", AdminID: "u1"}, DefaultTTL)
	if raw2 == raw {
		t.Fatal("two tickets are identical: no fresh nonce")
	}
	noAdmin, _ := s.codec.Seal(Ticket{OrgID: "org1", Nonce: "n", ExpiresAt: now.Add(time.Hour).Unix()})

	rotated, _ := NewSigner(clock, keyB, keyA)
	other, _ := NewSigner(clock, keyB)
	late, _ := NewSigner(func() time.Time { return now.Add(DefaultTTL) }, keyA)
	cases := []struct {
		name string
		s    *Signer
		raw  string
		want error
	}{
		{"valid", s, raw, nil},
		{"old key still verifies after rotation", rotated, raw, nil},
		{"wrong key", other, raw, ErrSignature},
		{"expired", late, raw, ErrExpired},
		{"signed but without admin", s, noAdmin, ErrMalformed},
		{"empty", s, "", ErrMalformed},
	}
	for _, c := range cases {
		if _, err := c.s.Verify(c.raw); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := NewSigner(nil, []byte("short")); err == nil {
		t.Error("short key accepted")
	}
}

func FuzzVerify(f *testing.F) {
	s, _ := NewSigner(nil, keyA)
	raw, _, _ := s.Issue(Ticket{OrgID: "org1", AdminID: "u1"}, time.Hour)
	f.Add(raw)
	f.Add("t1..")
	f.Add("t1.e30.AAAA")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := s.Verify(in)
		if err == nil && (got.OrgID == "" || got.AdminID == "" || got.Nonce == "") {
			t.Fatalf("accepted an incomplete ticket %q: %+v", in, got)
		}
	})
}
