package render

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/blockkit"

	"github.com/crmslack/crmslack/services/signals/internal/burst"
	"github.com/crmslack/crmslack/services/signals/internal/matrix"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 12, 1, 14, 30, 0, 0, time.UTC)

func group(entries ...burst.Entry) burst.Group {
	return burst.Group{
		PostKey: "k", Org: "acme", Team: "T1", SlackUser: "U1",
		Owner:   burst.Person{ID: "crm-alice", Name: "Alice Johnson", Email: "alice@acme.example"},
		Record:  burst.Record{Module: "Contacts", ID: "c-42", Name: "John Smith (Zylker)"},
		Started: entries[0].At, Entries: entries, Shown: len(entries),
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	cfg := Config{CRMBaseURL: "https://crm.example.com/crm/acme"}
	missed := burst.Entry{EventID: "e1", Channel: int32(matrix.Call), Kind: "missed", At: t0, From: "John Smith", FromPhone: "+1 (555) 010-0199", Summary: "Rang twice, no voicemail"}
	chat := func(i int, s string) burst.Entry {
		return burst.Entry{EventID: "c" + string(rune('0'+i)), Channel: int32(matrix.Chat), Kind: "started", At: t0.Add(time.Duration(i) * 15 * time.Second), From: "John Smith", Summary: s, URL: "https://chat.example.com/c/77"}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		g    burst.Group
	}{
		{"missed_call", cfg, group(missed)},
		{"chat_burst", cfg, group(chat(0, "Hi, is anyone there?"), chat(1, "I need the quote <today> & not tomorrow"), chat(2, "Hello?"), chat(3, "Calling instead"), chat(4, "Never mind, email me"))},
		{"email_no_crm_url", Config{}, group(burst.Entry{EventID: "m1", Channel: int32(matrix.Email), Kind: "received", At: t0, Title: "Renewal question", Summary: "Can we move to annual billing?", URL: "https://mail.example.com/t/9"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := Render(tc.cfg, tc.g)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, m.Blocks, "", "  "); err != nil {
				t.Fatal(err)
			}
			got := []byte(`{"text": ` + mustJSON(t, m.Text) + `, "blocks": ` + pretty.String() + "}\n")
			path := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file:\n%s", tc.name, got)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLimits(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("<&> ", 2000)
	var entries []burst.Entry
	for i := range burst.MaxEntries {
		entries = append(entries, burst.Entry{EventID: string(rune('a' + i)), Channel: int32(matrix.Email), Kind: "received", At: t0, From: long, Title: long, Summary: long, URL: "https://x.example/" + long})
	}
	for n := 1; n <= len(entries); n += burst.MaxEntries - 1 {
		m, err := Render(Config{CRMBaseURL: "https://crm.example.com"}, group(entries[:n]...))
		if err != nil {
			t.Fatalf("%d entries: %v", n, err)
		}
		if err := blockkit.Validate(m.Blocks); err != nil {
			t.Fatalf("%d entries: %v", n, err)
		}
	}
}

func TestTelURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"+1 (555) 010-0199":   "tel:+15550100199",
		"555 0100":            "tel:5550100",
		"call me":             "",
		"12":                  "",
		"javascript:alert(1)": "",
	} {
		if got := telURL(in); got != want {
			t.Errorf("telURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add("John", "+1 555", "summary", "https://x.example/a", "missed")
	f.Fuzz(func(t *testing.T, from, phone, summary, u, kind string) {
		g := group(burst.Entry{EventID: "e", Channel: int32(matrix.Call), Kind: kind, At: t0, From: from, FromPhone: phone, Summary: summary, URL: u},
			burst.Entry{EventID: "f", Channel: int32(matrix.Chat), Kind: kind, At: t0, From: from, Summary: summary, URL: u})
		for _, gg := range []burst.Group{g, {Record: g.Record, Entries: g.Entries[:1]}} {
			m, err := Render(Config{CRMBaseURL: "https://crm.example.com"}, gg)
			if err != nil {
				t.Fatal(err)
			}
			if err := blockkit.Validate(m.Blocks); err != nil {
				t.Fatal(err)
			}
		}
	})
}
