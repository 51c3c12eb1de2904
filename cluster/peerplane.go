package cluster

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/pushring/pushring/internal/peerpb"
)

// The peer plane is the gRPC service and gossip between peers. It is
// closed when peers must prove themselves: with --cluster.tls-config every
// gRPC call and gossip connection needs a certificate of the cluster's CA,
// and with --cluster.gossip-key-file every gossip message is encrypted
// with the cluster's key. Without either it is open to whoever reaches
// its ports, and the gRPC listener binds only the advertised address.

// Bounds of the peer gRPC server.
const (
	// minRecvBytes is the least a peer accepts in one message: a hand-off
	// batch (handOffBatchBytes) with room to spare.
	minRecvBytes = 2 * handOffBatchBytes
	// recvOverhead is what a forwarded push adds to its body.
	recvOverhead = 64 << 10
	// extraStreams are the streams a connection may hold beside pushes:
	// hand-off batches, fan-out calls and a wipe.
	extraStreams = 16
	// defaultStreams is the push share of the streams when
	// --push.max-inflight is 0 (no limit).
	defaultStreams = 64
)

// registerSecurityFlags registers --cluster.tls-config.
func (c *Config) registerSecurityFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.TLSConfigFile, flagTLSConfig, "",
		"File with the TLS of the peer plane, in Alertmanager's format (tls_server_config and tls_client_config): mutual TLS for the peer gRPC and for gossip. Certificates and CA files are re-read when they change on disk. Empty leaves the peer plane without TLS.")
}

// validateSecurity checks --cluster.tls-config: it parses and every file
// in it loads.
func (c *Config) validateSecurity() error {
	if c.TLSConfigFile == "" {
		return nil
	}
	if !c.clustered() {
		return fmt.Errorf("--%s needs --cluster.listen-address", flagTLSConfig)
	}
	_, err := newPeerTLS(c.TLSConfigFile, slog.New(slog.DiscardHandler))
	return err
}

// setUpPeerPlane loads the TLS of the peer plane and hands it to gossip,
// and logs whether the plane is open.
func (c *Cluster) setUpPeerPlane() error {
	if !c.cfg.clustered() {
		return nil
	}
	if c.cfg.TLSConfigFile != "" {
		t, err := newPeerTLS(c.cfg.TLSConfigFile, c.logger)
		if err != nil {
			return err
		}
		c.tls = t
		c.cfg.Membership.TLS = t.transport()
	}
	switch {
	case c.tls == nil && c.cfg.Membership.GossipKeyFile == "":
		c.logger.Warn("the peer plane is open: without --" + flagTLSConfig + " or --cluster.gossip-key-file any host that reaches the gossip and gRPC ports can join the cluster, read and write its groups; the gRPC listener binds the advertised address only (docs/security.md)")
	case c.tls == nil:
		c.logger.Warn("peer gRPC without TLS: gossip is encrypted, but any host that reaches the gRPC port can read and write groups; set --" + flagTLSConfig + " (docs/security.md)")
	}
	return nil
}

// grpcListenAddress is where the peer gRPC listens: the flag's address,
// but for a wildcard host on an open peer plane the advertised host, so
// that the unauthenticated service is not offered on every interface.
func (c *Cluster) grpcListenAddress() string {
	addr := c.cfg.Membership.GRPCListenAddress
	if c.tls != nil {
		return addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !wildcard(host) {
		return addr
	}
	if h := c.advertisedHost(); h != "" {
		return net.JoinHostPort(h, port)
	}
	return addr
}

// advertisedHost is the host other peers reach this one at: the advertise
// address, a specific gossip listen IP, or the private IP memberlist
// picks for a wildcard one. Empty if none is found.
func (c *Cluster) advertisedHost() string {
	m := c.cfg.Membership
	for _, a := range []string{m.AdvertiseAddress, m.ListenAddress} {
		if h, _, err := net.SplitHostPort(a); err == nil && !wildcard(h) {
			return h
		}
	}
	ip, err := sockaddr.GetPrivateIP()
	if err != nil {
		return ""
	}
	return ip
}

func wildcard(host string) bool {
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}

// serverOptions are the options of the peer gRPC server: peerpb's, a
// receive limit sized from --push.max-body-bytes, a bound on the streams
// of one connection, and mutual TLS when configured, which refuses a
// client without a valid certificate in the handshake, before any handler.
func (c *Cluster) serverOptions() []grpc.ServerOption {
	opts := append(peerpb.ServerOptions(),
		grpc.MaxRecvMsgSize(c.recvLimit()),
		grpc.MaxConcurrentStreams(c.maxStreams()),
	)
	if c.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(c.tls.server())))
	}
	return opts
}

// recvLimit is the largest message the peer gRPC server reads: a
// forwarded push of --push.max-body-bytes, or a hand-off batch, with room
// for a group a little larger than either.
func (c *Cluster) recvLimit() int {
	n := max(2*c.cfg.MaxBodyBytes+recvOverhead, minRecvBytes)
	return int(min(n, peerpb.MaxMessageBytes))
}

// maxStreams bounds the concurrent calls on one peer connection: the
// pushes this peer admits at once, plus hand-off and fan-out.
func (c *Cluster) maxStreams() uint32 {
	n := c.cfg.MaxInflight
	if n <= 0 {
		n = defaultStreams
	}
	return uint32(n + extraStreams)
}

// dialOptions are the options of a client connection to the peer at addr.
func (c *Cluster) dialOptions(addr string) []grpc.DialOption {
	opts := peerpb.DialOptions()
	if c.tls != nil {
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(c.tls.client(addr))))
	}
	return opts
}

// ReloadKeys re-reads the gossip key file (SIGHUP, /-/reload). A broken
// file keeps the keys in force and is the error. Without a key file it
// does nothing.
func (c *Cluster) ReloadKeys() error { return c.members.ReloadKeys() }
