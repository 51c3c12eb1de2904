package store

import (
	"bytes"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fillBench pushes n edge-node groups into s.
func fillBench(t *testing.T, s *Store, n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, s.Apply(benchPush(i, time.Unix(1_700_000_000, 0))))
	}
}

// A store whose render cache is smaller than its renderings serves the same
// scrapes as one without a bound, keeps at most the bound, and keeps it
// for the next scrape.
func TestRenderCacheBounded(t *testing.T) {
	const limit = 8 << 10
	small, err := New(Config{MaxRenderCacheBytes: limit}, nil, nil)
	require.NoError(t, err)
	unbounded, err := New(Config{}, nil, nil)
	require.NoError(t, err)
	fillBench(t, small, 50)
	fillBench(t, unbounded, 50)
	for _, f := range []Format{FormatProtoDelim, FormatOpenMetrics} {
		var want, got, again bytes.Buffer
		require.NoError(t, unbounded.WriteExposition(&want, f, nil))
		require.NoError(t, small.WriteExposition(&got, f, nil))
		require.Equal(t, want.String(), got.String(), f.String())
		require.LessOrEqual(t, small.cache.bytes(), int64(limit), f.String())
		require.Positive(t, small.cache.bytes(), "%s: renderings are kept up to the bound", f)
		require.NoError(t, small.WriteExposition(&again, f, nil))
		require.Equal(t, want.String(), again.String(), f.String())
	}
	require.Greater(t, unbounded.cache.bytes(), int64(4*limit), "the unbounded store keeps every rendering")
}

// Families that leave the store give their room back: replaced, deleted,
// wiped.
func TestRenderCacheReleased(t *testing.T) {
	s, err := New(Config{}, nil, nil)
	require.NoError(t, err)
	scrape := func() {
		for _, f := range []Format{FormatProtoDelim, FormatOpenMetrics} {
			require.NoError(t, s.WriteExposition(&bytes.Buffer{}, f, nil))
		}
	}
	fillBench(t, s, 20)
	scrape()
	full := s.cache.bytes()
	require.Positive(t, full)
	require.NoError(t, s.Apply(benchPush(0, time.Unix(1_700_000_100, 0)))) // replaces group 0
	require.Less(t, s.cache.bytes(), full)
	s.Delete(benchPush(1, time.Time{}).Key)
	scrape()
	require.Less(t, s.cache.bytes(), full)
	require.Equal(t, 19, s.Wipe())
	require.Zero(t, s.cache.bytes())
}

// Scrapes that race with pushes and deletes never leave room counted for
// a family that left the store: once every group is gone, nothing is.
func TestRenderCacheRaces(t *testing.T) {
	s, err := New(Config{MaxRenderCacheBytes: 64 << 10}, nil, nil)
	require.NoError(t, err)
	fillBench(t, s, 40)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, f := range []Format{FormatProtoDelim, FormatOpenMetrics} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.WriteExposition(&bytes.Buffer{}, f, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 400 {
		p := benchPush(i%40, time.Unix(1_700_000_000+int64(i), 0))
		if i%5 == 0 {
			s.Delete(p.Key)
			continue
		}
		require.NoError(t, s.Apply(p), strconv.Itoa(i))
	}
	close(stop)
	wg.Wait()
	for i := range 40 {
		s.Delete(benchPush(i, time.Time{}).Key)
	}
	require.Zero(t, s.cache.bytes())
}
