package shard

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/internal/testpki"
)

// writeKeys writes a gossip key file holding keys, the first primary.
func writeKeys(t *testing.T, path string, keys ...[]byte) {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	}
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(b.String()), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func key(b byte) []byte { return []byte(strings.Repeat(string(rune('a'+b)), 32)) }

// keyFile is a new key file of keys in the test's directory.
func keyFile(t *testing.T, keys ...[]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gossip.key")
	writeKeys(t, path, keys...)
	return path
}

// failedRejoins waits until p's re-joins of its seeds failed n times: its
// seeds were contacted and refused it.
func failedRejoins(t *testing.T, p *testPeer, n float64) {
	t.Helper()
	eventually(t, p.name+" fails to re-join its seeds", func() bool {
		return p.counter(p.m.metrics.rejoins, resultFailure) >= n
	})
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"empty":  "# only a comment\n\n",
		"base64": "not base64!\n",
		"size":   base64.StdEncoding.EncodeToString([]byte("short")) + "\n",
	} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		_, err := loadKeys(path)
		require.ErrorContains(t, err, "--"+flagGossipKeyFile, name)
	}
	keys, err := loadKeys(keyFile(t, key(1), key(2), key(1)))
	require.NoError(t, err)
	require.Equal(t, [][]byte{key(1), key(2)}, keys, "first key first, duplicates once")

	cfg := DefaultConfig()
	cfg.GossipKeyFile = keyFile(t, key(1))
	require.ErrorContains(t, cfg.Validate(), "need --"+flagListenAddress, "a key without gossip")
}

// TestGossipKeyRequiredToJoin: a node without the cluster's key, or with
// another key, cannot join, and the keyed peers never place it.
func TestGossipKeyRequiredToJoin(t *testing.T) {
	a := startPeer(t, "key-a", peerOpts{label: testLabel, grpcPort: 19400, keyFile: keyFile(t, key(1))})
	b := startPeer(t, "key-b", peerOpts{label: testLabel, grpcPort: 19410, keyFile: keyFile(t, key(1)), seeds: []string{a.gossipAddr()}})
	ringsAre(t, []*testPeer{a, b}, "key-a", "key-b")
	require.True(t, a.m.Encrypted())

	plain := startPeer(t, "plain", peerOpts{label: testLabel, grpcPort: 19420, seeds: []string{a.gossipAddr()}})
	other := startPeer(t, "other-key", peerOpts{label: testLabel, grpcPort: 19430, keyFile: keyFile(t, key(9)), seeds: []string{b.gossipAddr()}})
	failedRejoins(t, plain, 3)
	failedRejoins(t, other, 3)
	for _, p := range []*testPeer{a, b} {
		require.Equal(t, []string{"key-a", "key-b"}, p.ringIDs(), "%s placed a node without the key", p.name)
		require.Len(t, p.m.Peers(), 2)
	}
	require.Equal(t, []string{"plain"}, plain.ringIDs())
	require.Equal(t, []string{"other-key"}, other.ringIDs())
}

// TestGossipKeyRotation rotates the key of two peers in three reloads
// (add the new key, make it primary, drop the old one) and the peers stay
// members throughout; afterwards the old key no longer gets in.
func TestGossipKeyRotation(t *testing.T) {
	fa, fb := keyFile(t, key(1)), keyFile(t, key(1))
	a := startPeer(t, "rot-a", peerOpts{label: testLabel, grpcPort: 19500, keyFile: fa})
	b := startPeer(t, "rot-b", peerOpts{label: testLabel, grpcPort: 19510, keyFile: fb, seeds: []string{a.gossipAddr()}})
	both := []*testPeer{a, b}
	ringsAre(t, both, "rot-a", "rot-b")

	steps := [][][]byte{{key(1), key(2)}, {key(2), key(1)}, {key(2)}}
	for i, keys := range steps {
		for _, f := range []string{fa, fb} {
			writeKeys(t, f, keys...)
		}
		// One peer reloads first: the other still encrypts with the old
		// primary meanwhile, and both must understand each other.
		require.NoError(t, a.m.ReloadKeys(), "step %d", i)
		exchange(t, a, b)
		require.NoError(t, b.m.ReloadKeys(), "step %d", i)
		exchange(t, a, b)
		require.Equal(t, keys[0], a.m.keyring.GetPrimaryKey())
		require.Len(t, a.m.keyring.GetKeys(), len(keys))
	}
	ringsAre(t, both, "rot-a", "rot-b")

	old := startPeer(t, "old-key", peerOpts{label: testLabel, grpcPort: 19520, keyFile: keyFile(t, key(1)), seeds: []string{a.gossipAddr()}})
	failedRejoins(t, old, 3)
	require.Equal(t, []string{"rot-a", "rot-b"}, a.ringIDs())

	// A broken file keeps the keys in force.
	require.NoError(t, os.WriteFile(fa, []byte("garbage\n"), 0o600))
	require.Error(t, a.m.ReloadKeys())
	require.Equal(t, key(2), a.m.keyring.GetPrimaryKey())
}

// exchange makes each peer push/pull its state with the other, which
// fails unless each decrypts what the other encrypts.
func exchange(t *testing.T, a, b *testPeer) {
	t.Helper()
	for _, p := range [][2]*testPeer{{a, b}, {b, a}} {
		n, err := p[0].m.ml.Load().Join([]string{p[1].gossipAddr()})
		require.NoError(t, err, "%s exchanges with %s", p[0].name, p[1].name)
		require.Equal(t, 1, n)
	}
	require.Equal(t, []string{"rot-a", "rot-b"}, a.ringIDs())
}

// transportTLS is a gossip TLS of certificates issued by ca.
func transportTLS(t *testing.T, ca *testpki.CA) *TransportTLS {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue("peer", "127.0.0.1")
	require.NoError(t, err)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca.PEM))
	return &TransportTLS{
		Server: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert},
		Client: func(string) *tls.Config {
			return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "127.0.0.1"}
		},
	}
}

// TestGossipOverTLS: peers with certificates of the cluster's CA form a
// cluster over the TLS transport; a node with another CA's certificate
// cannot join.
func TestGossipOverTLS(t *testing.T) {
	ca, err := testpki.NewCA("cluster")
	require.NoError(t, err)
	rogueCA, err := testpki.NewCA("rogue")
	require.NoError(t, err)
	a := startPeer(t, "tls-a", peerOpts{label: testLabel, grpcPort: 19600, tls: transportTLS(t, ca), keyFile: keyFile(t, key(1))})
	b := startPeer(t, "tls-b", peerOpts{label: testLabel, grpcPort: 19610, tls: transportTLS(t, ca), keyFile: keyFile(t, key(1)), seeds: []string{a.gossipAddr()}})
	c := startPeer(t, "tls-c", peerOpts{label: testLabel, grpcPort: 19620, tls: transportTLS(t, ca), keyFile: keyFile(t, key(1)), seeds: []string{b.gossipAddr()}})
	all := []*testPeer{a, b, c}
	ringsAre(t, all, "tls-a", "tls-b", "tls-c")
	for _, p := range all {
		eventually(t, p.name+" settles", p.m.Settled)
	}

	rogue := startPeer(t, "rogue", peerOpts{label: testLabel, grpcPort: 19630, tls: transportTLS(t, rogueCA), keyFile: keyFile(t, key(1)), seeds: []string{a.gossipAddr()}})
	failedRejoins(t, rogue, 3)
	require.Equal(t, []string{"tls-a", "tls-b", "tls-c"}, a.ringIDs())
	require.Equal(t, []string{"rogue"}, rogue.ringIDs())

	// A graceful leave goes through the TLS transport too.
	require.NoError(t, c.stop())
	ringsAre(t, []*testPeer{a, b}, "tls-a", "tls-b")
}
