package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/cputime"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/internal/testpki"
)

// BenchmarkPeerHop is the gRPC hop of a forwarded push alone, plaintext
// beside mutual TLS in one run: a 40-series body sent with Peer.Push over
// one reused loopback connection to a peer whose ingester applies nothing,
// with the server and dial options the cluster builds.
func BenchmarkPeerHop(b *testing.B) {
	var body strings.Builder
	body.WriteString("# TYPE bench_value gauge\n")
	for i := range 40 {
		fmt.Fprintf(&body, "bench_value{series=\"s%d\"} %d\n", i, i)
	}
	req := &peerpb.PushRequest{Method: http.MethodPut, Path: "/job/bench/instance/a", Body: []byte(body.String())}
	for _, plane := range []string{"plaintext", "tls"} {
		b.Run("plane="+plane, func(b *testing.B) {
			c := &Cluster{cfg: testConfig(), ing: &fakeIngester{result: ingest.Result{Status: http.StatusOK}}, admit: freeAdmission{}, answer: answer}
			if plane == "tls" {
				ca, err := testpki.NewCA("bench")
				if err != nil {
					b.Fatal(err)
				}
				files, err := ca.Write(b.TempDir(), "127.0.0.1")
				if err != nil {
					b.Fatal(err)
				}
				if c.tls, err = newPeerTLS(files.Config, slog.New(slog.DiscardHandler)); err != nil {
					b.Fatal(err)
				}
			}
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := grpc.NewServer(c.serverOptions()...)
			peerpb.RegisterPeerServer(srv, &benchPeer{c: c})
			go func() { _ = srv.Serve(lis) }()
			defer srv.Stop()
			cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), c.dialOptions(lis.Addr().String())...)
			if err != nil {
				b.Fatal(err)
			}
			defer cc.Close()
			client := peerpb.NewPeerClient(cc)
			if _, err := client.Push(context.Background(), req); err != nil {
				b.Fatal(err) // the handshake, outside the loop
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(req.Body)))
			defer cputime.Start().PerOp(b)
			for b.Loop() {
				if _, err := client.Push(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchPeer answers a push at once: the hop without the apply.
type benchPeer struct {
	peerpb.UnimplementedPeerServer
	c *Cluster
}

func (p *benchPeer) Push(context.Context, *peerpb.PushRequest) (*peerpb.PushResponse, error) {
	return &peerpb.PushResponse{StatusCode: http.StatusOK}, nil
}
