package cluster

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pushring/pushring/internal/testpki"
)

func TestParseTLSFile(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ body, want string }{
		"unknown field": {"tls_server_config:\n  cert_fle: x\n", "field cert_fle not found"},
		"no server":     {"tls_client_config:\n  cert_file: c\n  key_file: k\n  ca_file: ca\n", "tls_server_config is missing"},
		"no client CA": {"tls_server_config:\n  cert_file: c\n  key_file: k\ntls_client_config:\n  cert_file: c\n  key_file: k\n  ca_file: ca\n",
			"needs client_ca_file"},
		"weak auth": {"tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n  client_auth_type: VerifyClientCertIfGiven\ntls_client_config:\n  cert_file: c\n  key_file: k\n  ca_file: ca\n",
			"only RequireAndVerifyClientCert"},
		"skip verify": {"tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\ntls_client_config:\n  cert_file: c\n  key_file: k\n  ca_file: ca\n  insecure_skip_verify: true\n",
			"insecure_skip_verify is not allowed"},
		"no client cert": {"tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\ntls_client_config:\n  ca_file: ca\n",
			"tls_client_config needs cert_file"},
		"version": {"tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n  min_version: TLS10\ntls_client_config:\n  cert_file: c\n  key_file: k\n  ca_file: ca\n",
			"want TLS12 or TLS13"},
	} {
		path := filepath.Join(dir, name+".yml")
		require.NoError(t, os.WriteFile(path, []byte(tc.body), 0o600))
		_, err := parseTLSFile(path)
		require.ErrorContains(t, err, tc.want, name)
		require.ErrorContains(t, err, "--"+flagTLSConfig, name)
	}
	_, err := newPeerTLS(filepath.Join(dir, "missing.yml"), slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "--"+flagTLSConfig)
}

// tlsServer accepts TLS connections with cfg, completes each handshake
// and writes the byte 'x', until the test ends.
func tlsServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = c.Write([]byte("x"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// talk dials addr with cfg and returns the serial of the server's
// certificate once it answered.
func talk(addr string, cfg *tls.Config) (string, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return "", err
	}
	if string(b) != "x" {
		return "", errors.New("no answer")
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func peerTLSOf(t *testing.T, ca *testpki.CA) (*peerTLS, testpki.Files) {
	t.Helper()
	f, err := ca.Write(t.TempDir(), "127.0.0.1")
	require.NoError(t, err)
	pt, err := newPeerTLS(f.Config, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return pt, f
}

// TestPeerTLSMutual: both sides verify each other, and a rotated
// certificate is used by the next connection without a restart.
func TestPeerTLSMutual(t *testing.T) {
	ca, err := testpki.NewCA("cluster")
	require.NoError(t, err)
	rogueCA, err := testpki.NewCA("rogue")
	require.NoError(t, err)
	srv, srvFiles := peerTLSOf(t, ca)
	cli, _ := peerTLSOf(t, ca)
	rogue, _ := peerTLSOf(t, rogueCA)
	addr := tlsServer(t, srv.server())

	first, err := talk(addr, cli.client(addr))
	require.NoError(t, err, "a peer of the cluster's CA gets in")

	noCert := cli.client(addr)
	noCert.GetClientCertificate = nil
	_, err = talk(addr, noCert)
	require.Error(t, err, "a client without a certificate is refused")
	_, err = talk(addr, rogue.client(addr))
	require.Error(t, err, "a client of another CA is refused")
	_, err = talk(tlsServer(t, rogue.server()), cli.client(addr))
	require.ErrorContains(t, err, "server certificate", "a server of another CA is refused")
	_, err = talk(addr, cli.client("localhost:1"))
	require.ErrorContains(t, err, "server certificate", "a server certificate for another name is refused")

	require.NoError(t, ca.Rotate(srvFiles, "127.0.0.1"))
	second, err := talk(addr, cli.client(addr))
	require.NoError(t, err)
	require.NotEqual(t, first, second, "the next connection gets the rotated certificate")

	// A half-written rotation keeps the certificate in force.
	require.NoError(t, os.WriteFile(srvFiles.Key, []byte("broken"), 0o600))
	third, err := talk(addr, cli.client(addr))
	require.NoError(t, err)
	require.Equal(t, second, third)

	// A new CA, rolled out with new certificates, is taken as well.
	newCA, err := testpki.NewCA("cluster-2")
	require.NoError(t, err)
	_, err = newCA.Write(srvFiles.Dir, "127.0.0.1")
	require.NoError(t, err)
	_, err = talk(addr, cli.client(addr))
	require.Error(t, err, "the client still trusts the old CA only")
	_, err = talk(addr, peerTLSOrFail(t, newCA).client(addr))
	require.NoError(t, err, "the server now trusts and presents the new CA")
}

func peerTLSOrFail(t *testing.T, ca *testpki.CA) *peerTLS {
	p, _ := peerTLSOf(t, ca)
	return p
}
