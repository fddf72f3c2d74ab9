package cluster

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// balancer is a TCP load balancer in front of a service's replicas, as the
// platform would put one (a Kubernetes Service, an L4 load balancer): each
// new connection goes to the next replica that accepts it. gRPC keeps its
// connection, so a client stays on one replica until that replica dies and
// its reconnect lands on another. Kept here, not a library's, because one
// loopback forwarder is all the distributed mode needs.
type balancer struct {
	lis      net.Listener
	backends []string
	next     atomic.Uint64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
}

func newBalancer(lis net.Listener, backends []string) *balancer {
	b := &balancer{lis: lis, backends: backends, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.serve()
	return b
}

func (b *balancer) addr() string { return b.lis.Addr().String() }

func (b *balancer) serve() {
	defer b.wg.Done()
	for {
		c, err := b.lis.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.forward(c)
		}()
	}
}

func (b *balancer) forward(c net.Conn) {
	defer c.Close()
	var up net.Conn
	for range b.backends {
		addr := b.backends[b.next.Add(1)%uint64(len(b.backends))]
		var err error
		if up, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			break
		}
	}
	if up == nil {
		return // no replica up: the client sees a reset and retries
	}
	defer up.Close()
	if !b.track(c, up) {
		return
	}
	defer b.untrack(c, up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	// Either side gone ends both: a dead replica's clients reconnect at once.
	_ = c.Close()
	_ = up.Close()
	<-done
}

func (b *balancer) track(cs ...net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	for _, c := range cs {
		b.conns[c] = struct{}{}
	}
	return true
}

func (b *balancer) untrack(cs ...net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range cs {
		delete(b.conns, c)
	}
}

func (b *balancer) close() {
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	_ = b.lis.Close()
	b.wg.Wait()
}
