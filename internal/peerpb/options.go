package peerpb

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// MaxMessageBytes bounds every peer message, sent or received. The largest
// are a forwarded push (its body is already capped by the HTTP body limit,
// far below this), a hand-off batch (the sender splits batches to stay under
// it) and a shard's exposition for the merged view. gRPC's default receive
// limit of 4 MiB is too small for the last two; 64 MiB keeps one message from
// costing a peer unbounded memory. A larger message fails with
// codes.ResourceExhausted.
const MaxMessageBytes = 64 << 20

// Keepalive timings. The client pings an idle connection every
// keepaliveTime so a dead peer is noticed within keepaliveTime +
// keepaliveTimeout even when no call is in flight; the server allows pings
// that often (its MinTime must not exceed the client's Time, or it closes
// the connection with "too_many_pings").
const (
	keepaliveTime    = 30 * time.Second
	keepaliveTimeout = 10 * time.Second
	keepaliveMinTime = 15 * time.Second
)

// ServerOptions returns the options every peer gRPC server is built with:
// message size limits, keepalive and its enforcement policy. Transport
// credentials are insecure (plaintext), for loopback and in-cluster
// networks; TLS comes later.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    keepaliveTime,
			Timeout: keepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             keepaliveMinTime,
			PermitWithoutStream: true,
		}),
	}
}

// DialOptions returns the options every peer client connection is built
// with: message size limits per call, keepalive, and insecure (plaintext)
// transport credentials for loopback and in-cluster networks; TLS comes
// later. Callers still set a deadline on every call.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
		),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                keepaliveTime,
			Timeout:             keepaliveTimeout,
			PermitWithoutStream: true,
		}),
	}
}
