package cluster

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/pushring/pushring/shard"
)

// flagTLSConfig names the file of the peer plane's TLS.
const flagTLSConfig = "cluster.tls-config"

// maxTLSFileBytes bounds the files --cluster.tls-config reads: the YAML,
// certificates, keys and CA bundles are a few KiB each.
const maxTLSFileBytes = 1 << 20

// tlsFile is --cluster.tls-config, in Alertmanager's format: the server
// side (peers dialling this one) and the client side (this peer dialling
// others), both used for the peer gRPC and for gossip.
type tlsFile struct {
	Server *tlsServerSection `yaml:"tls_server_config"`
	Client *tlsClientSection `yaml:"tls_client_config"`
}

// tlsServerSection is tls_server_config: exporter-toolkit's names.
type tlsServerSection struct {
	CertFile       string `yaml:"cert_file"`
	KeyFile        string `yaml:"key_file"`
	ClientCAFile   string `yaml:"client_ca_file"`
	ClientAuthType string `yaml:"client_auth_type"`
	MinVersion     string `yaml:"min_version"`
}

// tlsClientSection is tls_client_config: Prometheus' names.
type tlsClientSection struct {
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	CAFile             string `yaml:"ca_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	MinVersion         string `yaml:"min_version"`
}

// requireClientCert is the only client_auth_type the peer plane takes:
// every peer proves itself with a certificate of the cluster's CA.
const requireClientCert = "RequireAndVerifyClientCert"

// parseTLSFile reads and checks --cluster.tls-config. Unknown fields are
// errors, and so is anything that would leave a direction unverified.
func parseTLSFile(path string) (*tlsFile, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagTLSConfig, err)
	}
	var f tlsFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("--%s %s: %w", flagTLSConfig, path, err)
	}
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s %s: "+format, append([]any{flagTLSConfig, path}, args...)...))
	}
	switch s := f.Server; {
	case s == nil:
		add("tls_server_config is missing")
	case s.CertFile == "" || s.KeyFile == "":
		add("tls_server_config needs cert_file and key_file")
	case s.ClientCAFile == "":
		add("tls_server_config needs client_ca_file: peers must prove themselves with a certificate")
	case s.ClientAuthType != "" && s.ClientAuthType != requireClientCert:
		add("tls_server_config client_auth_type %q: only %s is allowed on the peer plane", s.ClientAuthType, requireClientCert)
	}
	switch c := f.Client; {
	case c == nil:
		add("tls_client_config is missing")
	case c.CertFile == "" || c.KeyFile == "":
		add("tls_client_config needs cert_file and key_file: peers refuse a client without a certificate")
	case c.CAFile == "":
		add("tls_client_config needs ca_file")
	case c.InsecureSkipVerify:
		add("tls_client_config insecure_skip_verify is not allowed on the peer plane")
	}
	if f.Server != nil {
		if _, err := tlsVersion(f.Server.MinVersion); err != nil {
			add("tls_server_config %v", err)
		}
	}
	if f.Client != nil {
		if _, err := tlsVersion(f.Client.MinVersion); err != nil {
			add("tls_client_config %v", err)
		}
	}
	return &f, errors.Join(errs...)
}

// tlsVersion is a min_version value; empty is TLS 1.2.
func tlsVersion(s string) (uint16, error) {
	switch strings.ToUpper(s) {
	case "", "TLS12":
		return tls.VersionTLS12, nil
	case "TLS13":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("min_version %q: want TLS12 or TLS13", s)
}

// readSmall reads a file of at most maxTLSFileBytes.
func readSmall(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxTLSFileBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, fi.Size(), maxTLSFileBytes)
	}
	return os.ReadFile(path)
}

// peerTLS is the TLS of the whole peer plane, built from --cluster.tls-config.
// Its certificates and CA bundles are re-read when their files change on
// disk (cert-manager and kubelet rotate them in place), at the next
// handshake: connections made after a rotation use the new files, without
// a restart. Files that do not load (a rotation caught halfway) keep the
// material in force, with a warning.
type peerTLS struct {
	serverMin, clientMin   uint16
	serverName             string
	serverCert, clientCert *certFiles
	clientCAs, rootCAs     *caFile
}

// newPeerTLS loads path and checks that every file in it loads.
func newPeerTLS(path string, logger *slog.Logger) (*peerTLS, error) {
	f, err := parseTLSFile(path)
	if err != nil {
		return nil, err
	}
	t := &peerTLS{
		serverName: f.Client.ServerName,
		serverCert: &certFiles{cert: f.Server.CertFile, key: f.Server.KeyFile, logger: logger},
		clientCert: &certFiles{cert: f.Client.CertFile, key: f.Client.KeyFile, logger: logger},
		clientCAs:  &caFile{path: f.Server.ClientCAFile, logger: logger},
		rootCAs:    &caFile{path: f.Client.CAFile, logger: logger},
	}
	t.serverMin, _ = tlsVersion(f.Server.MinVersion) // parseTLSFile checked them
	t.clientMin, _ = tlsVersion(f.Client.MinVersion)
	for _, load := range []func() error{
		func() error { _, err := t.serverCert.get(); return err },
		func() error { _, err := t.clientCert.get(); return err },
		func() error { _, err := t.clientCAs.get(); return err },
		func() error { _, err := t.rootCAs.get(); return err },
	} {
		if err := load(); err != nil {
			return nil, fmt.Errorf("--%s %s: %w", flagTLSConfig, path, err)
		}
	}
	return t, nil
}

// server is the configuration of the side that accepts peers: each
// handshake takes the certificate and client CAs as they are on disk now,
// and a client without a certificate of those CAs is refused.
func (t *peerTLS) server() *tls.Config {
	return &tls.Config{
		MinVersion: t.serverMin,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, err := t.serverCert.get()
			if err != nil {
				return nil, err
			}
			pool, err := t.clientCAs.get()
			if err != nil {
				return nil, err
			}
			return &tls.Config{
				MinVersion:   t.serverMin,
				Certificates: []tls.Certificate{*cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
			}, nil
		},
	}
}

// client is the configuration of a connection to the peer at addr
// (host:port). The server's certificate must chain to the CA file as it is
// on disk now and name server_name, or the host of addr without one. The
// standard verification is off only because its roots are fixed when the
// configuration is made; VerifyConnection does it with the current ones.
func (t *peerTLS) client(addr string) *tls.Config {
	name := t.serverName
	if name == "" {
		if h, _, err := net.SplitHostPort(addr); err == nil {
			name = h
		} else {
			name = addr
		}
	}
	return &tls.Config{
		MinVersion:         t.clientMin,
		ServerName:         t.serverName,
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection against the current CA file
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return t.clientCert.get()
		},
		VerifyConnection: func(cs tls.ConnectionState) error { return t.verifyServer(cs, name) },
	}
}

// verifyServer checks the server's chain against the current CA file and
// its name.
func (t *peerTLS) verifyServer(cs tls.ConnectionState, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("peer TLS: the server sent no certificate")
	}
	roots, err := t.rootCAs.get()
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: name,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("peer TLS: server certificate: %w", err)
	}
	return nil
}

// transport is the TLS of the gossip transport.
func (t *peerTLS) transport() *shard.TransportTLS {
	return &shard.TransportTLS{Server: t.server(), Client: t.client}
}

// stamp identifies a file's contents cheaply: its size and modification
// time, as stat reports them through symlinks (kubelet swaps a symlink).
func stamp(paths ...string) (string, error) {
	var b strings.Builder
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String(), nil
}

// certFiles is a certificate and its key, re-read when either changes.
type certFiles struct {
	cert, key string
	logger    *slog.Logger

	mu      sync.Mutex
	stamp   string
	current *tls.Certificate
}

// get returns the key pair as it is on disk; when the files changed but
// do not load, the pair loaded before, and an error only if there is none.
func (c *certFiles) get() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := stamp(c.cert, c.key)
	if err == nil && st == c.stamp {
		return c.current, nil
	}
	if err == nil {
		var pair tls.Certificate
		if pair, err = loadPair(c.cert, c.key); err == nil {
			if c.current != nil {
				c.logger.Info("peer TLS certificate reloaded", "cert_file", c.cert)
			}
			c.stamp, c.current = st, &pair
			return c.current, nil
		}
	}
	if c.current == nil {
		return nil, fmt.Errorf("load certificate %s and key %s: %w", c.cert, c.key, err)
	}
	c.logger.Warn("peer TLS certificate changed on disk but does not load; the one in force stays", "cert_file", c.cert, "err", err)
	c.stamp = st // warn once per change
	return c.current, nil
}

func loadPair(cert, key string) (tls.Certificate, error) {
	cb, err := readSmall(cert)
	if err != nil {
		return tls.Certificate{}, err
	}
	kb, err := readSmall(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(cb, kb)
}

// caFile is a bundle of CA certificates, re-read when it changes.
type caFile struct {
	path   string
	logger *slog.Logger

	mu      sync.Mutex
	stamp   string
	current *x509.CertPool
}

// get returns the pool as it is on disk, as certFiles.get does.
func (c *caFile) get() (*x509.CertPool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := stamp(c.path)
	if err == nil && st == c.stamp {
		return c.current, nil
	}
	if err == nil {
		var b []byte
		if b, err = readSmall(c.path); err == nil {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(b) {
				if c.current != nil {
					c.logger.Info("peer TLS CA file reloaded", "file", c.path)
				}
				c.stamp, c.current = st, pool
				return pool, nil
			}
			err = errors.New("no PEM certificate in it")
		}
	}
	if c.current == nil {
		return nil, fmt.Errorf("load CA file %s: %w", c.path, err)
	}
	c.logger.Warn("peer TLS CA file changed on disk but does not load; the one in force stays", "file", c.path, "err", err)
	c.stamp = st
	return c.current, nil
}
