package cluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/pushring/pushring/ingest"
	"github.com/pushring/pushring/internal/peerpb"
	"github.com/pushring/pushring/store"
)

// fakeIngester records what it is asked to apply and answers as told.
type fakeIngester struct {
	mu         sync.Mutex
	applied    []ingest.Parsed
	result     ingest.Result
	err        error
	overloaded int
}

func (f *fakeIngester) Parse(r ingest.Request) ingest.Parsed {
	in, _ := ingest.New(ingest.Config{MaxBodyBytes: 1 << 20}, &store.Store{}, nil, nil, prometheus.NewRegistry())
	return in.Parse(r)
}

func (f *fakeIngester) Apply(_ context.Context, p ingest.Parsed) (ingest.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, p)
	return f.result, f.err
}

func (f *fakeIngester) CountOverloaded()  { f.overloaded++ }
func (f *fakeIngester) CountUnavailable() {}

func (f *fakeIngester) ForwardedBody(b []byte) io.Reader { return bytes.NewReader(b) }

// refusingAdmission refuses every push, as a peer at capacity does.
type refusingAdmission struct{}

func (refusingAdmission) Acquire(context.Context) error { return errOverloaded }
func (refusingAdmission) Release()                      {}

var errOverloaded = errors.Join(ingest.ErrOverloaded)

type freeAdmission struct{}

// freeBudget charges nothing; refusingBudget refuses every push, as a peer
// whose push memory budget is full does.
type freeBudget struct{}

func (freeBudget) ChargeForwarded([]byte, string) (func(), error) { return func() {}, nil }

type refusingBudget struct{}

func (refusingBudget) ChargeForwarded([]byte, string) (func(), error) { return nil, errOverloaded }

func (freeAdmission) Acquire(context.Context) error { return nil }
func (freeAdmission) Release()                      {}

// answer maps errors as the api does for the cases these tests use.
func answer(err error) (int, int) {
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		return re.Code, re.RetryAfter
	case errors.Is(err, ingest.ErrOverloaded):
		return http.StatusServiceUnavailable, 1
	case errors.Is(err, store.ErrLimit):
		return http.StatusTooManyRequests, 0
	}
	return http.StatusInternalServerError, 0
}

// lonePeer is the cluster of a peer on its own, with a real store.
func lonePeer(t *testing.T, ing Ingester, adm Admission, cfg Config) (*Cluster, *store.Store) {
	t.Helper()
	st, err := store.New(store.Config{TombstoneTTL: time.Hour}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	cfg.Membership.PeerName = "peer-0"
	c, err := New(cfg, Deps{Ingester: ing, Store: st, Admission: adm, Budget: freeBudget{}, Answer: answer, HTTPAddr: "127.0.0.1:9091"}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c, st
}

// testConfig is the configuration of the tests written for one copy per
// group (--cluster.replication-factor=1); replication's tests set their
// own.
func testConfig() Config {
	c := DefaultConfig()
	c.MaxBodyBytes = 1 << 20
	c.ReplicationFactor = 1
	return c
}

// TestServerPush: a forwarded push gets what an HTTP push would get on
// this peer: the status, the body and the Retry-After.
func TestServerPush(t *testing.T) {
	ing := &fakeIngester{result: ingest.Result{Status: http.StatusAccepted}}
	c, _ := lonePeer(t, ing, freeAdmission{}, testConfig())
	svc := &server{c: c}
	resp, err := svc.Push(context.Background(), &peerpb.PushRequest{Method: http.MethodDelete, Path: "/job/x", Ttl: "5m", Body: []byte("b")})
	require.NoError(t, err)
	require.Equal(t, int32(http.StatusAccepted), resp.GetStatusCode())
	require.Len(t, ing.applied, 1)
	got := ing.applied[0]
	require.Equal(t, "/job/x", got.Path)
	require.Equal(t, "5m", http.Header(got.Header).Get(ingest.TTLHeader))

	ing.err = &store.LimitError{Limit: store.LimitMaxGroups, Detail: "full"}
	resp, err = svc.Push(context.Background(), &peerpb.PushRequest{Method: http.MethodPut, Path: "/job/x"})
	require.NoError(t, err)
	require.Equal(t, int32(http.StatusTooManyRequests), resp.GetStatusCode())
	require.Equal(t, "push refused: full", resp.GetBody())
}

func TestServerPushOverloaded(t *testing.T) {
	ing := &fakeIngester{}
	c, _ := lonePeer(t, ing, refusingAdmission{}, testConfig())
	resp, err := (&server{c: c}).Push(context.Background(), &peerpb.PushRequest{Method: http.MethodPut, Path: "/job/x"})
	require.NoError(t, err)
	require.Equal(t, int32(http.StatusServiceUnavailable), resp.GetStatusCode())
	require.Equal(t, uint32(1), resp.GetRetryAfterSeconds())
	require.Equal(t, 1, ing.overloaded, "counted under the ingester's overload reason")
	require.Empty(t, ing.applied, "refused before it was applied")
}

// A forwarded push over the owner's push memory budget gets 503 with
// Retry-After before it takes a slot or is applied.
func TestServerPushOverBudget(t *testing.T) {
	ing := &fakeIngester{}
	st, err := store.New(store.Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	cfg := testConfig()
	cfg.Membership.PeerName = "peer-0"
	c, err := New(cfg, Deps{Ingester: ing, Store: st, Admission: refusingAdmission{}, Budget: refusingBudget{}, Answer: answer, HTTPAddr: "127.0.0.1:9091"}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(c.Close)
	resp, err := (&server{c: c}).Push(context.Background(), &peerpb.PushRequest{Method: http.MethodPut, Path: "/job/x", Body: []byte("m 1\n")})
	require.NoError(t, err)
	require.Equal(t, int32(http.StatusServiceUnavailable), resp.GetStatusCode())
	require.Equal(t, uint32(1), resp.GetRetryAfterSeconds())
	require.Zero(t, ing.overloaded, "refused by the budget, before admission")
	require.Empty(t, ing.applied)
}

func TestServerHandOff(t *testing.T) {
	c, st := lonePeer(t, &fakeIngester{}, freeAdmission{}, testConfig())
	svc := &server{c: c}
	src, err := store.New(store.Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	k := store.NewGroupKey(map[string]string{"job": "a"})
	require.NoError(t, src.Apply(store.Push{Key: k}))
	gs, _ := src.Group(k)
	g, err := groupToPB(gs)
	require.NoError(t, err)
	gone := store.NewGroupKey(map[string]string{"job": "gone"})

	resp, err := svc.HandOff(context.Background(), &peerpb.HandOffRequest{OriginPeer: "peer-1", Groups: []*peerpb.Group{
		g,
		{Key: []byte(gone.String()), Version: 9, Deleted: true},
		{Key: []byte("not a key")},
	}})
	require.NoError(t, err)
	require.Equal(t, uint32(2), resp.GetAccepted())
	require.Len(t, resp.GetRejected(), 1)
	require.Equal(t, rejectInvalid, resp.GetRejected()[0].GetReason())
	_, ok := st.Group(k)
	require.True(t, ok, "the group is stored")
	require.Len(t, st.Tombstones(), 1, "the delete is remembered")

	c.leaving.Store(true)
	_, err = svc.HandOff(context.Background(), &peerpb.HandOffRequest{Groups: []*peerpb.Group{g}})
	require.Equal(t, codes.Unavailable, status.Code(err), "a leaving peer takes nothing")
}

func TestServerWipe(t *testing.T) {
	c, st := lonePeer(t, &fakeIngester{}, freeAdmission{}, testConfig())
	require.NoError(t, st.Apply(store.Push{Key: store.NewGroupKey(map[string]string{"job": "a"})}))
	_, err := (&server{c: c}).Wipe(context.Background(), &peerpb.WipeRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	g, _ := st.Stats()
	require.Equal(t, 1, g, "nothing wiped without --web.enable-admin-api")

	cfg := testConfig()
	cfg.AdminAPI = true
	c, st = lonePeer(t, &fakeIngester{}, freeAdmission{}, cfg)
	require.NoError(t, st.Apply(store.Push{Key: store.NewGroupKey(map[string]string{"job": "a"})}))
	resp, err := (&server{c: c}).Wipe(context.Background(), &peerpb.WipeRequest{})
	require.NoError(t, err)
	require.Equal(t, uint64(1), resp.GetGroups())
}

func TestGroupPBRoundTrip(t *testing.T) {
	src, err := store.New(store.Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	k := store.NewGroupKey(map[string]string{"job": "a", "instance": "i"})
	require.NoError(t, src.Apply(store.Push{Key: k}))
	gs, _ := src.Group(k)
	g, err := groupToPB(gs)
	require.NoError(t, err)
	back, err := groupFromPB(g)
	require.NoError(t, err)
	require.Equal(t, gs.Key, back.Key)
	require.Equal(t, gs.Version, back.Version)
	require.Len(t, back.Families, len(gs.Families))

	g.Families[0].Name = "other"
	_, err = groupFromPB(g)
	require.ErrorContains(t, err, "holds metric family")
}

// A peer on its own hands nothing over and drops nothing it was not asked
// to: its groups are its own.
func TestLonePeerRoutesEverythingHere(t *testing.T) {
	ing := &fakeIngester{result: ingest.Result{Status: http.StatusOK}}
	c, _ := lonePeer(t, ing, freeAdmission{}, testConfig())
	res, err := c.Handle(context.Background(), ingest.Request{Method: http.MethodPut, Path: "/job/x"})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.Status)
	require.Len(t, ing.applied, 1)
	require.NoError(t, c.Ready())
}

// TestServerPushNotAfterForwarderGaveUp: a forwarded push whose forwarder
// has given up (its apply-by time has passed) is not applied, however
// long gRPC's own timeout still runs on this peer; one within its time
// is. A peer that resumes after SIGSTOP with a forwarded push in its
// socket would otherwise apply it with a version newer than the retry the
// forwarder sent to the next owner, and its old values would win.
func TestServerPushNotAfterForwarderGaveUp(t *testing.T) {
	st, err := store.New(store.Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	ing, err := ingest.New(ingest.Config{MaxBodyBytes: 1 << 20}, st, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	c, _ := lonePeer(t, ing, freeAdmission{}, testConfig())
	svc := &server{c: c}
	push := func(applyBy time.Time, job string) *peerpb.PushResponse {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // gRPC's own deadline, still far
		defer cancel()
		md := metadata.Pairs(applyByKey, strconv.FormatInt(applyBy.UnixNano(), 10))
		resp, err := svc.Push(metadata.NewIncomingContext(ctx, md),
			&peerpb.PushRequest{Method: http.MethodPut, Path: "/job/" + job, Body: []byte("m 1\n")})
		require.NoError(t, err)
		return resp
	}
	groups := func() int { g, _ := st.Stats(); return g }

	resp := push(time.Now().Add(-time.Second), "late")
	require.GreaterOrEqual(t, resp.GetStatusCode(), int32(300), "answer: %d %s", resp.GetStatusCode(), resp.GetBody())
	require.Contains(t, resp.GetBody(), "abandoned before it was applied")
	require.Zero(t, groups(), "nothing applied")

	resp = push(time.Now().Add(applyBySkew/2), "skewed") // the forwarder still waits, but within the clock skew
	require.GreaterOrEqual(t, resp.GetStatusCode(), int32(300))
	require.Zero(t, groups())

	resp = push(time.Now().Add(time.Minute), "in-time")
	require.Equal(t, int32(http.StatusOK), resp.GetStatusCode(), resp.GetBody())
	require.Equal(t, 1, groups())
}

// A text push forwarded by another peer arrives read ahead, as if pushed
// here: the third push of the same series is repeated (store.ApplyRepeat)
// and stores its values. A body over this peer's --push.max-body-bytes is
// still refused.
func TestServerPushRepeats(t *testing.T) {
	reg := prometheus.NewRegistry()
	st, err := store.New(store.Config{}, nil, reg)
	require.NoError(t, err)
	ing, err := ingest.New(ingest.Config{MaxBodyBytes: 64}, st, nil, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	c, _ := lonePeer(t, ing, freeAdmission{}, testConfig())
	svc := &server{c: c}
	push := func(body string) *peerpb.PushResponse {
		t.Helper()
		resp, err := svc.Push(context.Background(), &peerpb.PushRequest{Method: http.MethodPut, Path: "/job/edge", Body: []byte(body)})
		require.NoError(t, err)
		return resp
	}
	repeated := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "pushring_store_repeated_pushes_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		t.Fatal("no pushring_store_repeated_pushes_total")
		return 0
	}
	for _, v := range []string{"0", "1", "2"} { // seen, learnt, repeated
		require.Equal(t, int32(http.StatusOK), push("# TYPE m gauge\nm{a=\"1\"} "+v+"\n").GetStatusCode())
	}
	require.Equal(t, 1.0, repeated())
	g, ok := st.Group(store.NewGroupKey(map[string]string{"job": "edge"}))
	require.True(t, ok)
	require.Equal(t, 2.0, g.Families[0].Family.GetMetric()[0].GetGauge().GetValue(), "%v", g.Families[0].Family)

	resp := push("# TYPE m gauge\nm{a=\"1\"} 3\n# a comment that takes the body past 64 bytes\n")
	require.GreaterOrEqual(t, resp.GetStatusCode(), int32(400), resp.GetBody()) // the api's mapper makes it 413; this test's maps it to 500
	require.Contains(t, resp.GetBody(), "push body exceeds the limit of 64 bytes; raise --push.max-body-bytes")
	require.Equal(t, 1.0, repeated())
}
