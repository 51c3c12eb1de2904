package shard

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/memberlist"
)

// flagGossipKeyFile names the file of gossip encryption keys.
const flagGossipKeyFile = "cluster.gossip-key-file"

// maxKeyFileBytes bounds the key file: a few keys of 44 base64 bytes each.
const maxKeyFileBytes = 64 << 10

// loadKeys reads a gossip key file: one base64 key per line, each of 16, 24
// or 32 bytes (AES-128, -192 or -256), empty lines and lines starting with
// '#' skipped. The first key encrypts; every key decrypts, so a key is
// rotated in three steps, each rolled out to every peer before the next:
// add the new key on a later line, move it to the first line, remove the
// old one.
func loadKeys(path string) (keys [][]byte, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagGossipKeyFile, err)
	}
	if fi.Size() > maxKeyFileBytes {
		return nil, fmt.Errorf("--%s %s: %d bytes, more than the %d a key file may have", flagGossipKeyFile, path, fi.Size(), maxKeyFileBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flagGossipKeyFile, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("--%s %s line %d: not base64: %w", flagGossipKeyFile, path, n, err)
		}
		if l := len(k); l != 16 && l != 24 && l != 32 {
			return nil, fmt.Errorf("--%s %s line %d: a key of %d bytes; want 16, 24 or 32 (e.g. head -c 32 /dev/urandom | base64)", flagGossipKeyFile, path, n, l)
		}
		if !slices.ContainsFunc(keys, func(o []byte) bool { return bytes.Equal(o, k) }) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("--%s %s holds no key", flagGossipKeyFile, path)
	}
	return keys, nil
}

// newKeyring builds memberlist's keyring from the key file, or nil
// without one.
func newKeyring(path string) (*memberlist.Keyring, error) {
	if path == "" {
		return nil, nil
	}
	keys, err := loadKeys(path)
	if err != nil {
		return nil, err
	}
	return memberlist.NewKeyring(keys, keys[0])
}

// errNoKeyFile says a reload was asked of a peer without gossip keys.
var errNoKeyFile = errors.New("no --" + flagGossipKeyFile + " is set")

// ReloadKeys re-reads the gossip key file and installs its keys: the new
// ones first, then the new primary, then it drops the keys the file no
// longer has, so that at no point this peer lacks a key its peers encrypt
// with. A broken file keeps the keys in force. Without a key file it does
// nothing and returns nil.
func (m *Membership) ReloadKeys() error {
	if m.keyring == nil {
		return nil
	}
	keys, err := loadKeys(m.cfg.GossipKeyFile)
	if err != nil {
		m.logger.Error("gossip keys not reloaded; the keys in force stay", "err", err)
		return err
	}
	added, removed, err := installKeys(m.keyring, keys)
	if err != nil {
		m.logger.Error("gossip keys not reloaded; the keys in force stay", "err", err)
		return err
	}
	m.logger.Info("gossip keys reloaded", "file", m.cfg.GossipKeyFile, "keys", len(keys), "added", added, "removed", removed)
	return nil
}

// installKeys makes kr hold exactly keys, keys[0] as primary.
func installKeys(kr *memberlist.Keyring, keys [][]byte) (added, removed int, err error) {
	old := kr.GetKeys()
	has := func(set [][]byte, k []byte) bool {
		return slices.ContainsFunc(set, func(o []byte) bool { return bytes.Equal(o, k) })
	}
	for _, k := range keys {
		if !has(old, k) {
			if err := kr.AddKey(k); err != nil {
				return added, removed, fmt.Errorf("add gossip key: %w", err)
			}
			added++
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return added, removed, fmt.Errorf("use gossip key: %w", err)
	}
	for _, k := range old {
		if !has(keys, k) {
			if err := kr.RemoveKey(k); err != nil {
				return added, removed, fmt.Errorf("remove gossip key: %w", err)
			}
			removed++
		}
	}
	return added, removed, nil
}

// registerSecurityFlags registers the gossip key flag.
func (c *Config) registerSecurityFlags(fs *flag.FlagSet, d Config) {
	fs.StringVar(&c.GossipKeyFile, flagGossipKeyFile, d.GossipKeyFile,
		"File of gossip encryption keys, one base64 key of 16, 24 or 32 bytes per line: the first encrypts, every one decrypts. A peer without one of the keys cannot join. Re-read on SIGHUP and /-/reload, so keys rotate without a restart. Empty gossips in plaintext.")
}

// validateSecurity checks the key file when gossip is on.
func (c *Config) validateSecurity() []error {
	if c.GossipKeyFile == "" {
		return nil
	}
	if _, err := loadKeys(c.GossipKeyFile); err != nil {
		return []error{err}
	}
	return nil
}

// Encrypted reports whether gossip is encrypted with the cluster's keys.
func (m *Membership) Encrypted() bool { return m.keyring != nil }

// secure adds encryption and TLS to memberlist's configuration: with a
// keyring memberlist encrypts every packet and stream and drops those that
// are not encrypted with one of its keys, so a node without a key can
// neither join nor be joined; with TLS, gossip runs over the TLS transport.
func (m *Membership) secure(c *memberlist.Config) error {
	if m.keyring != nil {
		c.Keyring = m.keyring
		c.GossipVerifyIncoming, c.GossipVerifyOutgoing = true, true
	}
	if m.cfg.TLS != nil {
		tr, err := newTLSTransport(bindAddress(m.cfg.ListenAddress), m.cfg.TLS, m.logger.With("subsystem", "gossip-tls"))
		if err != nil {
			return err
		}
		c.Transport = tr
	}
	return nil
}
