package cluster

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/shard"
	"github.com/pushring/pushring/store"
)

// fakeOwner is a peer gRPC server that records what it is sent.
type fakeOwner struct {
	peerpb.UnimplementedPeerServer
	mu       sync.Mutex
	pushes   []*peerpb.PushRequest
	applyBy  [][]string // the apply-by metadata of each push
	answer   *peerpb.PushResponse
	handoffs []*peerpb.Group
	deletes  []*peerpb.Group // tombstones handed over
	reject   map[string]bool // keys refused at hand-off
	refuse   bool            // refuse every hand-off, as a leaving peer does
}

func (f *fakeOwner) Push(ctx context.Context, r *peerpb.PushRequest) (*peerpb.PushResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushes = append(f.pushes, r)
	f.applyBy = append(f.applyBy, metadata.ValueFromIncomingContext(ctx, applyByKey))
	return f.answer, nil
}

func (f *fakeOwner) HandOff(_ context.Context, r *peerpb.HandOffRequest) (*peerpb.HandOffResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse {
		return nil, errLeavingStatus
	}
	resp := &peerpb.HandOffResponse{}
	for _, g := range r.GetGroups() {
		switch {
		case g.GetDeleted():
			f.deletes = append(f.deletes, g)
		case f.reject[string(g.GetKey())]:
			resp.Rejected = append(resp.Rejected, &peerpb.Rejection{Key: g.GetKey(), Reason: rejectLimit, Message: "full"})
			continue
		default:
			f.handoffs = append(f.handoffs, g)
		}
		resp.Accepted++
	}
	return resp, nil
}

func (f *fakeOwner) handedOff() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.handoffs)
}

// serveOwner serves f on a loopback port until the test ends.
func serveOwner(t *testing.T, f *fakeOwner) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer(peerpb.ServerOptions()...)
	peerpb.RegisterPeerServer(s, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return l.Addr().String()
}

// closedAddr is a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// twoPeers is peer-0's cluster with a real ingester and store, in a
// placement it shares with peer-1 at addr.
type twoPeers struct {
	c   *Cluster
	st  *store.Store
	ing *ingest.Ingester
	p   *shard.Placement
}

func newTwoPeers(t *testing.T, icfg ingest.Config, addr string) *twoPeers {
	t.Helper()
	st, err := store.New(store.Config{TombstoneTTL: time.Hour}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	ing, err := ingest.New(icfg, st, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	cfg := testConfig()
	cfg.MaxBodyBytes = icfg.MaxBodyBytes
	cfg.Membership.PeerName = "peer-0"
	cfg.ForwardTimeout = 2 * time.Second
	cfg.DrainTimeout = 500 * time.Millisecond
	c, err := New(cfg, Deps{Ingester: ing, Store: st, Admission: freeAdmission{}, Budget: freeBudget{}, Answer: answer, HTTPAddr: "127.0.0.1:9091"}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	p, err := shard.NewPlacement([]shard.Member{{ID: "peer-0"}, {ID: "peer-1", GRPCAddr: addr}})
	require.NoError(t, err)
	c.ring = shard.NewRing(p)
	t.Cleanup(c.Close)
	return &twoPeers{c: c, st: st, ing: ing, p: p}
}

// job returns the path of a group that peer id owns.
func (tp *twoPeers) job(t *testing.T, id string) string {
	t.Helper()
	return tp.owned(t, id, "/job/j%d")
}

// owned returns a grouping path of the form format (with one %d) whose
// group peer id owns.
func (tp *twoPeers) owned(t *testing.T, id, format string) string {
	t.Helper()
	for i := range 1000 {
		path := fmt.Sprintf(format, i)
		k, err := ingest.ParseGroupingPath(path)
		require.NoError(t, err)
		if tp.p.Owner(k.Hash()).ID == id {
			return path
		}
	}
	t.Fatalf("no group of the form %s owned by %s", format, id)
	return ""
}

func push(method, path, body string) ingest.Request {
	return ingest.Request{Method: method, Path: path, Body: strings.NewReader(body)}
}

func TestForwardOwnerUnavailable(t *testing.T) {
	tp := newTwoPeers(t, ingest.DefaultConfig(), closedAddr(t))
	_, err := tp.c.Handle(context.Background(), push(http.MethodPut, tp.job(t, "peer-1"), "m 1\n"))
	require.ErrorIs(t, err, ErrOwnerUnavailable)
	code, retry := Answer503(err)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, 1, retry)
	require.Contains(t, err.Error(), `peer "peer-1"`)
	require.Contains(t, err.Error(), "retry later")
	require.Empty(t, tp.st.Keys(), "nothing is stored here instead")
	require.InDelta(t, 1, testutil.ToFloat64(tp.c.metrics.forwarded.WithLabelValues(forwardUnavailable)), 0)

	res, err := tp.c.Handle(context.Background(), push(http.MethodPut, tp.job(t, "peer-0"), "m 1\n"))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.Status, "a group this peer owns is applied here")
}

// Answer503 reads the answer an unavailable owner's error carries.
func Answer503(err error) (int, int) {
	var u *unavailableError
	if !errors.As(err, &u) {
		return 0, 0
	}
	return u.HTTPStatus(), u.RetryAfterSeconds()
}

func TestForwardRelaysTheOwnersAnswer(t *testing.T) {
	owner := &fakeOwner{answer: &peerpb.PushResponse{StatusCode: 429, Body: "full; raise --store.max-groups", RetryAfterSeconds: 7}}
	tp := newTwoPeers(t, ingest.DefaultConfig(), serveOwner(t, owner))
	body := gzipped(t, "m 1\n")
	path := tp.owned(t, "peer-1", "/job/j%d/instance@base64/YQ==")
	_, err := tp.c.Handle(context.Background(), ingest.Request{
		Method: http.MethodPost, Path: path, ContentType: "text/plain", ContentEncoding: "gzip",
		Body: bytes.NewReader(body), Header: http.Header{"Pushring-Ttl": {"5m"}},
	})
	var re *RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, 429, re.HTTPStatus())
	require.Equal(t, 7, re.RetryAfterSeconds())
	require.Equal(t, "full; raise --store.max-groups", err.Error(), "the body verbatim")
	require.Empty(t, tp.st.Keys())

	require.Len(t, owner.pushes, 1)
	got := owner.pushes[0]
	require.Equal(t, http.MethodPost, got.GetMethod())
	require.Equal(t, path, got.GetPath(), "the escaped path, undecoded")
	require.Equal(t, "gzip", got.GetContentEncoding())
	require.Equal(t, "text/plain", got.GetContentType())
	require.Equal(t, body, got.GetBody(), "the body as received, still compressed")
	require.Equal(t, "5m", got.GetTtl())
	require.Equal(t, "peer-0", got.GetOriginPeer())
	require.InDelta(t, 1, testutil.ToFloat64(tp.c.metrics.forwarded.WithLabelValues(forwardRefused)), 0)

	owner.answer = &peerpb.PushResponse{StatusCode: 202}
	res, err := tp.c.Handle(context.Background(), ingest.Request{Method: http.MethodDelete, Path: tp.job(t, "peer-1")})
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, res.Status)
	require.InDelta(t, 1, testutil.ToFloat64(tp.c.metrics.forwarded.WithLabelValues(forwardOK)), 0)
}

// TestForwardSendsItsDeadline: a forwarded push tells the owner, as a
// wall-clock time, when the forwarder gives up on it.
func TestForwardSendsItsDeadline(t *testing.T) {
	owner := &fakeOwner{answer: &peerpb.PushResponse{StatusCode: 200}}
	tp := newTwoPeers(t, ingest.DefaultConfig(), serveOwner(t, owner))
	before := time.Now()
	_, err := tp.c.Handle(context.Background(), ingest.Request{Method: http.MethodPut, Path: tp.job(t, "peer-1"), Body: strings.NewReader("m 1\n")})
	require.NoError(t, err)
	after := time.Now()
	require.Len(t, owner.applyBy, 1)
	require.Len(t, owner.applyBy[0], 1)
	n, err := strconv.ParseInt(owner.applyBy[0][0], 10, 64)
	require.NoError(t, err)
	by := time.Unix(0, n)
	require.False(t, by.Before(before.Add(tp.c.cfg.ForwardTimeout)), "apply-by %s, sent after %s", by, before)
	require.False(t, by.After(after.Add(tp.c.cfg.ForwardTimeout)), "apply-by %s, answered at %s", by, after)
}

// TestForwardChecksWhatItCanHere: requests refused before their body is
// read get the owner's answer without a call to it.
func TestForwardChecksWhatItCanHere(t *testing.T) {
	owner := &fakeOwner{answer: &peerpb.PushResponse{StatusCode: 200}}
	icfg := ingest.DefaultConfig()
	icfg.MaxBodyBytes = 16
	tp := newTwoPeers(t, icfg, serveOwner(t, owner))
	theirs := tp.job(t, "peer-1")
	_, err := tp.c.Handle(context.Background(), push(http.MethodPut, theirs, strings.Repeat("m 1\n", 10)))
	require.ErrorIs(t, err, ingest.ErrTooLarge)
	require.Contains(t, err.Error(), "--push.max-body-bytes")
	_, err = tp.c.Handle(context.Background(), push(http.MethodPut, "/job/", "m 1\n"))
	require.ErrorIs(t, err, ingest.ErrBadRequest, "a path error is answered here, as at the owner")
	for _, ttl := range [][]string{{"1m", "2m"}, {""}} {
		r := push(http.MethodPut, theirs, "m 1\n")
		r.Header = http.Header{"Pushring-Ttl": ttl}
		_, err = tp.c.Handle(context.Background(), r)
		require.ErrorIs(t, err, ingest.ErrBadRequest, "TTL header %q is refused here, as at the owner", ttl)
	}
	require.Empty(t, owner.pushes)

	// A body over the limit gets the message the owner would give, which
	// depends on the encoding and on which size trips first.
	alone, err := ingest.New(icfg, tp.st, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	for _, body := range []struct {
		name, encoding string
		b              []byte
	}{
		{"gzip, large once decompressed", "gzip", gzipped(t, strings.Repeat("m 1\n", 100))},
		{"identity", "identity", []byte(strings.Repeat("m 1\n", 10))},
	} {
		req := func() ingest.Request {
			return ingest.Request{Method: http.MethodPut, Path: theirs, ContentEncoding: body.encoding, Body: bytes.NewReader(body.b)}
		}
		_, want := alone.Handle(context.Background(), req())
		_, got := tp.c.Handle(context.Background(), req())
		require.Equal(t, want.Error(), got.Error(), body.name)
	}
	require.Empty(t, owner.pushes)
}

// TestRunHandOffMovesStrayGroups: a forwarded push stored here although
// another peer owns the group (the sender's view differed) is handed to
// the owner without waiting for a membership change.
func TestRunHandOffMovesStrayGroups(t *testing.T) {
	owner := &fakeOwner{}
	tp := newTwoPeers(t, ingest.DefaultConfig(), serveOwner(t, owner))
	tp.c.sweep = time.Hour // only the first pass and the push itself can move groups
	svc := &server{c: tp.c}
	forward := func(path, body string) {
		resp, err := svc.Push(context.Background(), &peerpb.PushRequest{Method: http.MethodPut, Path: path, Body: []byte(body)})
		require.NoError(t, err)
		require.Equal(t, int32(200), resp.GetStatusCode(), resp.GetBody())
	}
	waitEmpty := func(what string) {
		require.Eventually(t, func() bool { return len(tp.st.Keys()) == 0 }, 10*time.Second, 10*time.Millisecond, what)
	}
	forward(tp.job(t, "peer-1"), "m 1\n") // before the start: the first pass takes it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tp.c.runHandOff(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitEmpty("the first pass did not hand the early group over")

	forward(tp.owned(t, "peer-1", "/job/j%d/instance/stray"), "n 1\n")
	waitEmpty("the stray group is still here: the push did not wake the hand-off")
	require.Equal(t, 2, owner.handedOff())
}

// TestDrainSendsTombstones: a delete this peer saw of a group another peer
// owns goes to that peer, so an older copy there goes too.
func TestDrainSendsTombstones(t *testing.T) {
	owner := &fakeOwner{}
	tp := newTwoPeers(t, ingest.DefaultConfig(), serveOwner(t, owner))
	k, err := ingest.ParseGroupingPath(tp.job(t, "peer-1"))
	require.NoError(t, err)
	tp.st.Delete(k)
	tp.c.leaving.Store(true)
	handed, left := tp.c.drain(time.Now().Add(5 * time.Second))
	require.Zero(t, handed)
	require.Zero(t, left)
	owner.mu.Lock()
	require.Len(t, owner.deletes, 1)
	require.Equal(t, k.String(), string(owner.deletes[0].GetKey()))
	owner.mu.Unlock()
	require.Empty(t, tp.st.Tombstones(), "the owner has it now")
}

// TestDrainHandsEveryGroupOver drains a real store to a fake new owner; a
// group the owner refuses stays until the deadline.
func TestDrainHandsEveryGroupOver(t *testing.T) {
	owner := &fakeOwner{reject: map[string]bool{}}
	tp := newTwoPeers(t, ingest.DefaultConfig(), serveOwner(t, owner))
	for i := range 3 {
		_, err := tp.ing.Handle(context.Background(), push(http.MethodPut, fmt.Sprintf("/job/j%d", i), fmt.Sprintf("# TYPE m%d gauge\nm%d 1\n", i, i)))
		require.NoError(t, err)
	}
	refused, err := ingest.ParseGroupingPath("/job/j2")
	require.NoError(t, err)
	owner.reject[refused.String()] = true
	tp.c.leaving.Store(true) // this peer has gone: peer-1 owns everything
	handed, left := tp.c.drain(time.Now().Add(500 * time.Millisecond))
	require.Equal(t, 2, handed)
	require.Equal(t, 1, left)
	require.Equal(t, []store.GroupKey{refused}, tp.st.Keys(), "the refused group stays")
	require.InDelta(t, 2, testutil.ToFloat64(tp.c.metrics.handOffGroups.WithLabelValues(handOffSent)), 0)
	require.GreaterOrEqual(t, testutil.ToFloat64(tp.c.metrics.handOffGroups.WithLabelValues(handOffRejected)), 1.0)
}

// TestDrainWhenNobodyStays: when the only other peer refuses (it is
// leaving too), the drain does not wait for its deadline: it finds that
// nobody is left to take the groups, and the stop reports them dropped.
func TestDrainWhenNobodyStays(t *testing.T) {
	owner := &fakeOwner{refuse: true}
	tp := newTwoPeers(t, ingest.DefaultConfig(), serveOwner(t, owner))
	_, err := tp.ing.Handle(context.Background(), push(http.MethodPut, "/job/a", "m 1\n"))
	require.NoError(t, err)
	tp.c.leaving.Store(true)
	handed, left := tp.c.drain(time.Now().Add(time.Hour))
	require.InDelta(t, 1, testutil.ToFloat64(tp.c.metrics.handOffBatches.WithLabelValues(resultFailed)), 0,
		"one refusal, then the peer is out of the drain's placement: no retries until the deadline")
	require.Zero(t, handed)
	require.Equal(t, 1, left)
	tp.c.reportLeftBehind(handed, left, false)
	require.InDelta(t, 1, testutil.ToFloat64(tp.c.metrics.handOffGroups.WithLabelValues(handOffDropped)), 0)
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

// errLeavingStatus is what a leaving peer answers a hand-off with.
var errLeavingStatus = status.Error(codes.Unavailable, errLeaving.Error())
