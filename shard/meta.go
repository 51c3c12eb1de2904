package shard

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// metaVersion is the version byte that starts the metadata of this format.
const metaVersion = 1

// ErrInvalidMeta is returned by DecodeNodeMeta for bytes that are not node
// metadata it understands.
var ErrInvalidMeta = errors.New("invalid node metadata")

// NodeMeta is what a peer tells the others about itself through memberlist,
// beside its name and gossip address. It stays small: memberlist resends
// it with every alive message and caps it at memberlist.MetaMaxSize bytes.
// Group data never travels this way.
//
// The encoding, version 1, is
//
//	0x01, uvarint len, GRPCAddr bytes, uvarint len, HTTPAddr bytes, flags
//
// flags is one byte; bit 0 set means the peer is joining: it takes the
// state of the groups it will own before it serves, and no other peer
// places groups on it meanwhile. Metadata without the byte (a peer of an
// earlier release) serves.
//
// A decoder ignores bytes after the fields it knows, so a later version 1
// may append fields that older peers skip during a rolling upgrade; a change
// older peers must not misread takes a new version byte, which they reject.
type NodeMeta struct {
	// GRPCAddr is the host:port of the peer's gRPC service.
	GRPCAddr string
	// HTTPAddr is the host:port of the peer's HTTP API.
	HTTPAddr string
	// Joining is set while the peer takes the newest state of the groups it
	// will own, before it serves: other peers leave it out of placement.
	Joining bool
}

// metaJoining is the flag bit of NodeMeta.Joining.
const metaJoining = 1

// Encode returns the version 1 encoding of m. It fails if the encoding
// exceeds memberlist.MetaMaxSize.
func (m NodeMeta) Encode() ([]byte, error) {
	b := make([]byte, 0, 2+2*binary.MaxVarintLen16+len(m.GRPCAddr)+len(m.HTTPAddr))
	b = append(b, metaVersion)
	for _, f := range []string{m.GRPCAddr, m.HTTPAddr} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	var flags byte
	if m.Joining {
		flags |= metaJoining
	}
	b = append(b, flags)
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("encode node metadata: %d bytes, memberlist allows %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// DecodeNodeMeta decodes what Encode returned, of any version 1 peer.
func DecodeNodeMeta(b []byte) (NodeMeta, error) {
	if len(b) == 0 {
		return NodeMeta{}, fmt.Errorf("%w: empty", ErrInvalidMeta)
	}
	if b[0] != metaVersion {
		return NodeMeta{}, fmt.Errorf("%w: unknown version %d", ErrInvalidMeta, b[0])
	}
	rest := b[1:]
	var fields [2]string
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return NodeMeta{}, fmt.Errorf("%w: field %d truncated", ErrInvalidMeta, i)
		}
		fields[i] = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	m := NodeMeta{GRPCAddr: fields[0], HTTPAddr: fields[1]}
	if len(rest) > 0 {
		m.Joining = rest[0]&metaJoining != 0
	}
	return m, nil
}
