package cluster

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/store"
)

// TestRefusedPeerLeavesThePlacement: when the connection to a member drops
// and its port then refuses connections (its process is gone), this peer
// leaves it out of the placement at once, and takes it back once a
// connection to it is up again.
func TestRefusedPeerLeavesThePlacement(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	serve := func(l net.Listener) *grpc.Server {
		s := grpc.NewServer(peerpb.ServerOptions()...)
		peerpb.RegisterPeerServer(s, &fakeOwner{answer: &peerpb.PushResponse{StatusCode: 200}})
		go func() { _ = s.Serve(l) }()
		return s
	}
	s := serve(l)
	tp := newTwoPeers(t, ingest.DefaultConfig(), addr)
	theirs := tp.job(t, "peer-1")
	res, err := tp.c.Handle(context.Background(), push(http.MethodPut, theirs, "m 1\n"))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.Status, "forwarded: the connection is up")
	require.Equal(t, 2, tp.c.placement().Len())

	s.Stop() // the process is gone: its sockets close and its port refuses
	require.Eventually(t, func() bool { return tp.c.placement().Len() == 1 }, 5*time.Second, 10*time.Millisecond,
		"peer-1 is left out once its port refuses")
	res, err = tp.c.Handle(context.Background(), push(http.MethodPut, theirs, "m 2\n"))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.Status, "its group is applied here, the next peer of its ranking")
	_, ok := tp.st.Group(mustKey(t, theirs))
	require.True(t, ok)

	l2, err := net.Listen("tcp", addr)
	require.NoError(t, err, "the port is free again")
	s2 := serve(l2)
	t.Cleanup(s2.Stop)
	require.Eventually(t, func() bool { return tp.c.placement().Len() == 2 }, 10*time.Second, 10*time.Millisecond,
		"peer-1 is back once a connection to it is up")
}

func mustKey(t *testing.T, path string) store.GroupKey {
	t.Helper()
	k, err := ingest.ParseGroupingPath(path)
	require.NoError(t, err)
	return k
}
