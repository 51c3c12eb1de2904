package store

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A file written past syncEvery is synced on the side, one sync at a time,
// and wait collects the last one.
func TestSyncingFileSyncsOnTheSide(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	s := &syncingFile{f: f}
	chunk := make([]byte, 1<<20)
	for range 3 * syncEvery / len(chunk) {
		_, err := s.Write(chunk)
		require.NoError(t, err)
	}
	require.GreaterOrEqual(t, s.synced, int64(syncEvery), "a sync started")
	require.NoError(t, s.wait())
	require.Nil(t, s.running)
	require.NoError(t, s.wait(), "nothing left to wait for")
}

// A sync that fails on the side fails the write at wait, even though the
// file's later syncs may succeed.
func TestSyncingFileReportsFailedSync(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	s := &syncingFile{f: f, written: syncEvery}
	require.NoError(t, f.Close())
	_, err = s.Write([]byte("xy")) // the write fails; the sync it starts too
	require.ErrorIs(t, err, os.ErrClosed)
	require.ErrorIs(t, s.wait(), os.ErrClosed)
}
