package peerpb_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/pushring/pushring/internal/peerpb"
)

// fakePeer records what it receives and answers from canned values.
type fakePeer struct {
	peerpb.UnimplementedPeerServer

	mu      sync.Mutex
	pushes  []*peerpb.PushRequest
	batches []*peerpb.HandOffRequest

	pushResp   *peerpb.PushResponse
	exposition []byte
	// block makes Push wait for its context to end, then send whether that
	// context carried a deadline.
	block   bool
	blocked chan bool
}

func (f *fakePeer) Push(ctx context.Context, r *peerpb.PushRequest) (*peerpb.PushResponse, error) {
	if f.block {
		<-ctx.Done()
		_, hasDeadline := ctx.Deadline()
		f.blocked <- hasDeadline
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushes = append(f.pushes, r)
	return f.pushResp, nil
}

// HandOff accepts every group except those whose key starts with "bad".
func (f *fakePeer) HandOff(_ context.Context, r *peerpb.HandOffRequest) (*peerpb.HandOffResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, r)
	resp := &peerpb.HandOffResponse{}
	for _, g := range r.GetGroups() {
		if strings.HasPrefix(string(g.GetKey()), "bad") {
			resp.Rejected = append(resp.Rejected, &peerpb.Rejection{Key: g.GetKey(), Reason: "limit", Message: "too many groups"})
			continue
		}
		resp.Accepted++
	}
	return resp, nil
}

func (f *fakePeer) Groups(context.Context, *peerpb.GroupsRequest) (*peerpb.GroupsResponse, error) {
	return &peerpb.GroupsResponse{Groups: []*peerpb.Group{{Key: []byte("job\xffx\xff"), Families: []*peerpb.Family{{Name: "up", MetricFamily: f.exposition}}}}}, nil
}

// serve starts f on a bufconn listener with peerpb.ServerOptions and returns
// a dialer for it. The server is stopped and joined at cleanup.
func serve(t *testing.T, f *fakePeer) func(context.Context, string) (net.Conn, error) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(peerpb.ServerOptions()...)
	peerpb.RegisterPeerServer(srv, f)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		require.NoError(t, <-done)
	})
	return func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }
}

// client dials through dialer with opts; the connection is closed at cleanup.
func client(t *testing.T, dialer func(context.Context, string) (net.Conn, error), opts ...grpc.DialOption) peerpb.PeerClient {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///peer", append(opts, grpc.WithContextDialer(dialer))...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close()) })
	return peerpb.NewPeerClient(conn)
}

// setup registers the leak check first, so it runs after every other cleanup.
func setup(t *testing.T, f *fakePeer) peerpb.PeerClient {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
	return client(t, serve(t, f), peerpb.DialOptions()...)
}

func callCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPushRoundTrip(t *testing.T) {
	f := &fakePeer{pushResp: &peerpb.PushResponse{
		StatusCode:        503,
		Body:              "too many pushes in flight; increase --push.max-in-flight\n",
		RetryAfterSeconds: 2,
	}}
	c := setup(t, f)
	req := &peerpb.PushRequest{
		Method:          "PUT",
		Path:            "/job/batch/instance@base64/YS9i",
		ContentType:     "text/plain; version=0.0.4",
		ContentEncoding: "gzip",
		Body:            []byte{0x1f, 0x8b, 0x08, 0x00, 0xff, 0x00},
		Ttl:             "5m",
		OriginPeer:      "pushring-0",
	}

	resp, err := c.Push(callCtx(t), req)

	require.NoError(t, err)
	require.True(t, proto.Equal(f.pushResp, resp), "response: %v", resp)
	require.Len(t, f.pushes, 1)
	require.True(t, proto.Equal(req, f.pushes[0]), "received: %v", f.pushes[0])
}

func TestHandOffRoundTrip(t *testing.T) {
	f := &fakePeer{}
	c := setup(t, f)
	mf, err := proto.Marshal(&dto.MetricFamily{
		Name:   proto.String("jobs_done_total"),
		Type:   dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(42)}}},
	})
	require.NoError(t, err)
	pushed := time.Date(2026, 11, 22, 4, 0, 0, 123, time.UTC)
	req := &peerpb.HandOffRequest{OriginPeer: "pushring-1", Groups: []*peerpb.Group{
		{
			Key:               []byte("job\xffbatch\xff"),
			Families:          []*peerpb.Family{{Name: "jobs_done_total", MetricFamily: mf, TimeUnixNanos: pushed.UnixNano()}},
			Version:           7,
			DeadlineUnixNanos: pushed.Add(time.Hour).UnixNano(),
		},
		{Key: []byte("job\xffgone\xff"), Version: 9, Deleted: true},
		{Key: []byte("bad\xffx\xff"), Version: 1},
	}}

	resp, err := c.HandOff(callCtx(t), req)

	require.NoError(t, err)
	require.Equal(t, uint32(2), resp.GetAccepted())
	require.Len(t, resp.GetRejected(), 1)
	require.Equal(t, []byte("bad\xffx\xff"), resp.GetRejected()[0].GetKey())
	require.Equal(t, "limit", resp.GetRejected()[0].GetReason())
	require.Len(t, f.batches, 1)
	require.True(t, proto.Equal(req, f.batches[0]), "received: %v", f.batches[0])
	var got dto.MetricFamily
	require.NoError(t, proto.Unmarshal(f.batches[0].GetGroups()[0].GetFamilies()[0].GetMetricFamily(), &got))
	require.Equal(t, 42.0, got.GetMetric()[0].GetCounter().GetValue())
}

func TestGroupsRoundTrip(t *testing.T) {
	f := &fakePeer{exposition: []byte{0x0a, 0x02, 'u', 'p'}}
	c := setup(t, f)

	resp, err := c.Groups(callCtx(t), &peerpb.GroupsRequest{})

	require.NoError(t, err)
	require.Equal(t, f.exposition, resp.GetGroups()[0].GetFamilies()[0].GetMetricFamily())
}

func TestMessageOverLimitIsRejected(t *testing.T) {
	big := make([]byte, peerpb.MaxMessageBytes+1)
	tests := []struct {
		name string
		call func(t *testing.T, f *fakePeer, dialer func(context.Context, string) (net.Conn, error)) error
	}{
		{
			// A client built with DialOptions refuses to send it.
			name: "client send limit",
			call: func(t *testing.T, _ *fakePeer, dialer func(context.Context, string) (net.Conn, error)) error {
				_, err := client(t, dialer, peerpb.DialOptions()...).Push(callCtx(t), &peerpb.PushRequest{Body: big})
				return err
			},
		},
		{
			// A client without limits sends it; the server refuses to read it.
			name: "server receive limit",
			call: func(t *testing.T, _ *fakePeer, dialer func(context.Context, string) (net.Conn, error)) error {
				c := client(t, dialer, grpc.WithTransportCredentials(insecure.NewCredentials()))
				_, err := c.Push(callCtx(t), &peerpb.PushRequest{Body: big})
				return err
			},
		},
		{
			// The server refuses to send an oversized response.
			name: "server send limit",
			call: func(t *testing.T, f *fakePeer, dialer func(context.Context, string) (net.Conn, error)) error {
				f.exposition = big
				_, err := client(t, dialer, peerpb.DialOptions()...).Groups(callCtx(t), &peerpb.GroupsRequest{})
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) })
			f := &fakePeer{pushResp: &peerpb.PushResponse{StatusCode: 200}}
			err := tt.call(t, f, serve(t, f))
			require.Equal(t, codes.ResourceExhausted, status.Code(err), "error: %v", err)
			require.Empty(t, f.pushes)
		})
	}
}

func TestExpiredDeadline(t *testing.T) {
	f := &fakePeer{pushResp: &peerpb.PushResponse{StatusCode: 200}}
	c := setup(t, f)
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()

	_, err := c.Push(ctx, &peerpb.PushRequest{Method: "PUT", Path: "/job/x"})

	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "error: %v", err)
	require.Empty(t, f.pushes)
}

// TestDeadlinePropagates checks that the owner sees the forwarder's deadline:
// its context carries a deadline, and a handler that waits is released when
// the caller's deadline passes. (Whether the server's context ends by its own
// timer or by the client's cancellation is a race, so only the release is
// checked.) The deadline is long enough for the call to reach the server
// on a loaded machine: with a shorter one it can expire in the client, the
// handler never runs, and there is nothing to check.
func TestDeadlinePropagates(t *testing.T) {
	f := &fakePeer{block: true, blocked: make(chan bool, 1)}
	c := setup(t, f)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()

	_, err := c.Push(ctx, &peerpb.PushRequest{Method: "PUT", Path: "/job/x"})

	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "error: %v", err)
	select {
	case hasDeadline := <-f.blocked:
		require.True(t, hasDeadline, "server context had no deadline")
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never ran: the call did not reach the server within its deadline")
	}
}

func TestServerAndDialOptions(t *testing.T) {
	require.Equal(t, 64<<20, peerpb.MaxMessageBytes)
	require.NotEmpty(t, peerpb.ServerOptions())
	require.NotEmpty(t, peerpb.DialOptions())
}
