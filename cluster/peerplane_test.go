package cluster

import (
	"bytes"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/internal/testpki"
	"github.com/pushring/pushring/store"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clusteredPeer builds (without running) a clustered peer gossiping on
// 127.0.0.1 with its gRPC flag at a wildcard address, and returns its logs.
func clusteredPeer(t *testing.T, cfg Config) (*Cluster, *syncBuffer) {
	t.Helper()
	st, err := store.New(store.Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	cfg.Membership.PeerName = "peer-0"
	cfg.Membership.ListenAddress = "127.0.0.1:0"
	cfg.Membership.GRPCListenAddress = ":0"
	var logs syncBuffer
	c, err := New(cfg, Deps{Ingester: &fakeIngester{}, Store: st, Admission: freeAdmission{}, Answer: answer, HTTPAddr: "127.0.0.1:9091"},
		slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c, &logs
}

// TestOpenPlaneBindsTheAdvertisedAddress: without TLS or a gossip key,
// the gRPC listener binds the advertised host, not every interface, and
// the log says the plane is open; with TLS it binds what the flag says.
func TestOpenPlaneBindsTheAdvertisedAddress(t *testing.T) {
	open, logs := clusteredPeer(t, testConfig())
	host, _, err := net.SplitHostPort(open.grpcLis.Addr().String())
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host, "an open plane binds the advertised host only")
	require.Contains(t, logs.String(), "the peer plane is open")

	ca, err := testpki.NewCA("cluster")
	require.NoError(t, err)
	files, err := ca.Write(t.TempDir(), "127.0.0.1")
	require.NoError(t, err)
	cfg := testConfig()
	cfg.TLSConfigFile = files.Config
	closed, logs := clusteredPeer(t, cfg)
	host, _, err = net.SplitHostPort(closed.grpcLis.Addr().String())
	require.NoError(t, err)
	require.True(t, net.ParseIP(host).IsUnspecified(), "with TLS the flag's wildcard is kept, got %s", host)
	require.NotContains(t, logs.String(), "open")
}

func TestGRPCServerBounds(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 16 << 20
	cfg.MaxInflight = 64
	c := &Cluster{cfg: cfg}
	require.Equal(t, 32<<20+recvOverhead, c.recvLimit(), "two bodies and the rest of a push")
	require.Equal(t, uint32(80), c.maxStreams())
	c.cfg.MaxBodyBytes = 1 << 20
	require.Equal(t, minRecvBytes, c.recvLimit(), "a hand-off batch always fits")
	c.cfg.MaxBodyBytes = 60 << 20
	require.Equal(t, peerpb.MaxMessageBytes, c.recvLimit())
	c.cfg.MaxInflight = 0
	require.Equal(t, uint32(defaultStreams+extraStreams), c.maxStreams())
}

func TestTLSConfigNeedsGossip(t *testing.T) {
	cfg := testConfig()
	cfg.TLSConfigFile = "/nonexistent.yml"
	require.ErrorContains(t, cfg.Validate(), "--"+flagTLSConfig+" needs --cluster.listen-address")
	cfg.Membership.ListenAddress = "127.0.0.1:0"
	require.ErrorContains(t, cfg.Validate(), "--"+flagTLSConfig)
}
