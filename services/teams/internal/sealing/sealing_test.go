package sealing

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func newKey(t testing.TB, id string) Key {
	t.Helper()
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return Key{ID: id, Secret: b}
}

func mustRing(t testing.TB, keys ...Key) *Keyring {
	t.Helper()
	k, err := NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	ring := mustRing(t, k1)
	token := []byte("xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx")
	aad := AAD("org1", "T0ACME0001", "bot")
	sealed, err := ring.Seal(token, aad)
	if err != nil {
		t.Fatal(err)
	}
	if sealed.KeyID != "k1" {
		t.Fatalf("key id %q, want k1", sealed.KeyID)
	}
	if bytes.Contains(sealed.Data, token) || bytes.Contains(sealed.Data, []byte("xoxb")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	again, _ := ring.Seal(token, aad)
	if bytes.Equal(again.Data, sealed.Data) {
		t.Fatal("two seals of one value are equal: nonce reused")
	}

	tampered := func() Sealed {
		d := bytes.Clone(sealed.Data)
		d[len(d)/2] ^= 1
		return Sealed{KeyID: "k1", Data: d}
	}()
	cases := []struct {
		name string
		ring *Keyring
		s    Sealed
		aad  []byte
		want error
	}{
		{"right key", ring, sealed, aad, nil},
		{"wrong key under the same id", mustRing(t, Key{ID: "k1", Secret: k2.Secret}), sealed, aad, ErrOpen},
		{"unknown key id", mustRing(t, k2), sealed, aad, ErrUnknownKey},
		{"tampered ciphertext", ring, tampered, aad, ErrOpen},
		{"truncated", ring, Sealed{KeyID: "k1", Data: sealed.Data[:10]}, aad, ErrOpen},
		{"swapped org", ring, sealed, AAD("org2", "T0ACME0001", "bot"), ErrOpen},
		{"swapped team", ring, sealed, AAD("org1", "T0GLBX0001", "bot"), ErrOpen},
		{"swapped field", ring, sealed, AAD("org1", "T0ACME0001", "refresh"), ErrOpen},
		{"old key kept after rotation", mustRing(t, k2, k1), sealed, aad, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := c.ring.Open(c.s, c.aad)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if c.want == nil && !bytes.Equal(got, token) {
				t.Fatalf("opened %q", got)
			}
			if err != nil && strings.Contains(err.Error(), string(k1.Secret)) {
				t.Fatal("error mentions the key")
			}
		})
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	old, cur := newKey(t, "2025"), newKey(t, "2026")
	before := mustRing(t, old)
	sealed, err := before.Seal([]byte("secret"), AAD("o", "T"))
	if err != nil {
		t.Fatal(err)
	}
	after := mustRing(t, cur, old)
	if !after.Stale(sealed) || before.Stale(sealed) {
		t.Fatal("Stale should be true only under the rotated ring")
	}
	pt, err := after.Open(sealed, AAD("o", "T"))
	if err != nil || string(pt) != "secret" {
		t.Fatalf("open with the old key after rotation: %q %v", pt, err)
	}
	resealed, err := after.Seal(pt, AAD("o", "T"))
	if err != nil || resealed.KeyID != "2026" || after.Stale(resealed) {
		t.Fatalf("reseal: %+v %v", resealed, err)
	}
	// Once the old key is retired, old values no longer open.
	if _, err := mustRing(t, cur).Open(sealed, AAD("o", "T")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("retired key: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	secret := bytes.Repeat([]byte{7}, KeySize)
	std := base64.StdEncoding.EncodeToString(secret)
	raw := base64.RawURLEncoding.EncodeToString(secret)
	cases := []struct {
		spec    string
		current string
		ids     int
		bad     bool
	}{
		{spec: "k1:" + std, current: "k1", ids: 1},
		{spec: " k2:" + raw + " , k1:" + std, current: "k2", ids: 2},
		{spec: "", bad: true},
		{spec: "k1", bad: true},
		{spec: "k1:!!!", bad: true},
		{spec: "k1:" + base64.StdEncoding.EncodeToString(secret[:16]), bad: true},
		{spec: "k1:" + std + ",k1:" + std, bad: true},
		{spec: "bad id:" + std, bad: true},
	}
	for _, c := range cases {
		ring, err := ParseKeys(c.spec)
		if c.bad {
			if err == nil {
				t.Errorf("%q: want an error", c.spec)
			} else if strings.Contains(err.Error(), std) || strings.Contains(err.Error(), raw) {
				t.Errorf("%q: error reveals the secret: %v", c.spec, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		if ring.CurrentKeyID() != c.current || len(ring.KeyIDs()) != c.ids {
			t.Errorf("%q: current %q ids %v", c.spec, ring.CurrentKeyID(), ring.KeyIDs())
		}
	}
}

func TestAADUnambiguous(t *testing.T) {
	t.Parallel()
	if bytes.Equal(AAD("ab", "c"), AAD("a", "bc")) {
		t.Fatal("AAD is ambiguous")
	}
}
