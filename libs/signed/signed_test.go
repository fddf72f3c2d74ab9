package signed

import (
	"errors"
	"strings"
	"testing"
)

var (
	keyA = []byte(strings.Repeat("a", 32))
	keyB = []byte(strings.Repeat("b", 32))
)

type payload struct {
	Org string `json:"o"`
	N   int    `json:"n"`
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	c, err := New("v1", "test", keyA)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Seal(payload{Org: "org1", N: 7})
	if err != nil {
		t.Fatal(err)
	}
	rotated, _ := New("v1", "test", keyB, keyA)
	otherKey, _ := New("v1", "test", keyB)
	otherPurpose, _ := New("v1", "another use", keyA)
	otherVersion, _ := New("v2", "test", keyA)
	flip := []byte(raw)
	flip[5] ^= 1
	cases := []struct {
		name string
		c    *Codec
		raw  string
		want error
	}{
		{"valid", c, raw, nil},
		{"old key verifies after rotation", rotated, raw, nil},
		{"wrong key", otherKey, raw, ErrSignature},
		{"other purpose", otherPurpose, raw, ErrSignature},
		{"other version", otherVersion, raw, ErrMalformed},
		{"tampered", c, string(flip), ErrSignature},
		{"empty", c, "", ErrMalformed},
		{"no mac", c, "v1.abc", ErrMalformed},
		{"extra part", c, raw + ".x", ErrMalformed},
		{"too long", c, "v1." + strings.Repeat("a", MaxLen), ErrMalformed},
	}
	for _, tc := range cases {
		var got payload
		err := tc.c.Open(tc.raw, &got)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
		if err == nil && got != (payload{Org: "org1", N: 7}) {
			t.Errorf("%s: got %+v", tc.name, got)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]func() error{
		"no key":        func() error { _, err := New("v1", "p"); return err },
		"short key":     func() error { _, err := New("v1", "p", []byte("short")); return err },
		"dotted prefix": func() error { _, err := New("v.1", "p", keyA); return err },
	} {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got := ParseKeys(" " + string(keyA) + ", ," + string(keyB)); len(got) != 2 {
		t.Errorf("ParseKeys: %d keys", len(got))
	}
}

func FuzzOpen(f *testing.F) {
	c, _ := New("v1", "fuzz", keyA)
	raw, _ := c.Seal(payload{Org: "org1", N: 1})
	f.Add(raw)
	f.Add("v1..")
	f.Add("v1.e30.AAAA")
	f.Add("v1.eyJvIjoiIn0." + strings.Repeat("A", 43))
	f.Fuzz(func(t *testing.T, in string) {
		var got payload
		if c.Open(in, &got) != nil {
			return
		}
		// The fuzzer cannot forge a MAC: anything accepted must be the
		// canonical spelling of a value signed with the key.
		p, _, _ := strings.Cut(strings.TrimPrefix(in, "v1."), ".")
		if want := "v1." + p + "." + b64.EncodeToString(c.mac(keyA, p)); in != want {
			t.Fatalf("accepted a forged or non-canonical value %q", in)
		}
	})
}
