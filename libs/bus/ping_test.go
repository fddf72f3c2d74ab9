package bus_test

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
)

// TestSilentServerLeft: a server that stops answering without closing the
// connection (its host gone, a partition) is given up after the bus's
// pings, and the bus moves to a live one, well before nats.go's default
// of two unanswered pings two minutes apart.
func TestSilentServerLeft(t *testing.T) {
	t.Parallel()
	srv := testkit.NATS(t)
	direct := srv.ClientURL()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	// The proxy forwards to the server until frozen, then holds the
	// connection open and silent.
	var frozen sync.WaitGroup
	frozen.Add(1)
	freeze := sync.OnceFunc(frozen.Done)
	t.Cleanup(freeze)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		up, err := net.Dial("tcp", strings.TrimPrefix(direct, "nats://"))
		if err != nil {
			return
		}
		defer up.Close()
		go func() { _, _ = io.Copy(up, c) }()
		go func() { _, _ = io.Copy(c, up) }()
		frozen.Wait()
		_ = up.Close() // the server's side ends; the client's stays open, unanswered
		<-t.Context().Done()
	}()
	b, err := bus.Connect(testkit.Context(t), bus.Config{
		URL: "nats://" + lis.Addr().String() + "," + direct, Name: t.Name(),
		Logger: slog.New(slog.DiscardHandler), NATSOptions: []nats.Option{testkit.NATSLogin(t), nats.DontRandomize()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if got := b.Conn().ConnectedUrl(); got == direct {
		t.Fatalf("connected to %s, want the proxy first", got)
	}
	freeze()
	testkit.Eventually(t, 30*time.Second, func() bool { return b.Conn().ConnectedUrl() == direct }, "the bus on the live server")
}
