package settingskv

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/testkit"

	"github.com/crmslack/crmslack/services/signals/internal/app"
	"github.com/crmslack/crmslack/services/signals/internal/matrix"
)

// The store writes at a revision, and a second replica's view follows it.
func TestStoreAndView(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	js := testkit.JetStream(t, testkit.NATSConn(t, ns))
	ctx := testkit.Context(t)
	kv, err := Bind(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	st := NewStore(kv)
	cur, rev, err := st.Load(ctx, "acme")
	if err != nil || rev != 0 || !cur.Matrix.Enabled(matrix.Key{Channel: matrix.Call, Kind: "missed"}) {
		t.Fatalf("an org never changed: %+v rev %d err %v", cur, rev, err)
	}
	m, _ := cur.Matrix.With(map[matrix.Key]bool{{Channel: matrix.Call, Kind: "missed"}: false})
	cur.Matrix, cur.DefaultTeam, cur.OwnerTeams = m, "T1", map[string]string{"u1": "T2"}
	rev1, err := st.Save(ctx, cur, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Save(ctx, cur, 0); !errors.Is(err, app.ErrConflict) {
		t.Fatalf("a second create: %v, want ErrConflict", err)
	}
	got, rev, err := st.Load(ctx, "acme")
	if err != nil || rev != rev1 || got.Matrix.Enabled(matrix.Key{Channel: matrix.Call, Kind: "missed"}) || got.OwnerTeams["u1"] != "T2" || got.DefaultTeam != "T1" {
		t.Fatalf("read back: %+v rev %d (want %d) err %v", got, rev, rev1, err)
	}

	v := NewView()
	go func() { _ = v.Follow(ctx, kv, 10*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	testkit.Eventually(t, 5*time.Second, v.Synced, "the view read the bucket")
	if v.Get("acme").Matrix.Enabled(matrix.Key{Channel: matrix.Call, Kind: "missed"}) {
		t.Fatal("the view has not the stored matrix")
	}
	got.Matrix = matrix.Matrix{}
	if _, err := st.Save(ctx, got, rev); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		return v.Get("acme").Matrix.Enabled(matrix.Key{Channel: matrix.Call, Kind: "missed"})
	}, "the view follows a change")
}

// What the bucket holds is read back whatever it is: an error, never a
// panic, and a matrix made only of known cells.
func FuzzDecode(f *testing.F) {
	st := matrix.Settings{Org: "acme", DefaultTeam: "T1", OwnerTeams: map[string]string{"u": "T2"}}
	st.Matrix, _ = st.Matrix.With(map[matrix.Key]bool{{Channel: matrix.Call, Kind: "incoming"}: true})
	seed, err := proto.Marshal(Encode(st))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Decode(data)
		if err != nil {
			return
		}
		for k := range got.Matrix.Overrides() {
			if _, ok := matrix.Lookup(k); !ok {
				t.Fatalf("decoded an unknown cell %v", k)
			}
		}
	})
}
