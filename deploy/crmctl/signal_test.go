package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestSignalDryRun(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"signal", "-dry-run", "-org", "acme", "-channel", "support_ticket", "-kind", "escalated",
		"-owner", "bob@acme.example", "-record", "Contacts/c-1", "-from", "John", "-id", "s1"}, strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"crm.v1.acme.signal.support_ticket\t", `"eventId":"s1"`, `"channel":"SIGNAL_CHANNEL_SUPPORT_TICKET"`, `"kind":"escalated"`, `"email":"bob@acme.example"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run lacks %s: %s", want, out.String())
		}
	}
}

func TestSignalRefusesBadFlags(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"signal", "-dry-run", "-channel", "fax", "-record", "nope"}, strings.NewReader(""), &out, &errb)
	if code == 0 {
		t.Fatal("bad flags accepted")
	}
	for _, want := range []string{`-channel "fax"`, "-record MODULE/ID", "-org", "-owner"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("error lacks %s: %s", want, errb.String())
		}
	}
}
