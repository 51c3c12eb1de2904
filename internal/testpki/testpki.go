// Package testpki makes the certificates the tests of the peer plane's TLS
// use: a CA and peer certificates, generated at test time, written as PEM
// files with a --cluster.tls-config file that names them. Only tests
// import it.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority of one test.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate.
	PEM []byte
}

// NewCA makes a CA named name, valid for a day.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, PEM: pemOf("CERTIFICATE", der)}, nil
}

// Issue makes a certificate for both TLS sides (server and client auth)
// named cn, for the hosts (IP addresses or DNS names), and its key, as PEM.
func (ca *CA) Issue(cn string, hosts ...string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemOf("CERTIFICATE", der), pemOf("EC PRIVATE KEY", kb), nil
}

// Files are the paths of one peer's TLS material and its config file.
type Files struct {
	Dir, CA, Cert, Key, Config string
}

// Write writes the CA, a certificate issued by it for hosts and its key
// into dir, and a --cluster.tls-config file that uses them on both sides.
func (ca *CA) Write(dir string, hosts ...string) (Files, error) {
	f := Files{
		Dir: dir, CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "peer.pem"),
		Key: filepath.Join(dir, "peer-key.pem"), Config: filepath.Join(dir, "tls.yml"),
	}
	if err := ca.Rotate(f, hosts...); err != nil {
		return Files{}, err
	}
	if err := os.WriteFile(f.CA, ca.PEM, 0o600); err != nil {
		return Files{}, err
	}
	cfg := fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_ca_file: %s\n  client_auth_type: RequireAndVerifyClientCert\n"+
		"tls_client_config:\n  cert_file: %s\n  key_file: %s\n  ca_file: %s\n", f.Cert, f.Key, f.CA, f.Cert, f.Key, f.CA)
	return f, os.WriteFile(f.Config, []byte(cfg), 0o600)
}

// Rotate replaces f's certificate and key with new ones issued by ca,
// each file written whole under a temporary name and renamed over the
// old one, as a rotation on disk does.
func (ca *CA) Rotate(f Files, hosts ...string) error {
	cert, key, err := ca.Issue("peer", hosts...)
	if err != nil {
		return err
	}
	if err := replace(f.Key, key); err != nil {
		return err
	}
	return replace(f.Cert, cert)
}

func replace(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}
