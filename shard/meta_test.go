package shard

import (
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

// TestNodeMetaWire pins the version 1 encoding: peers of different
// versions read each other's metadata during a rolling upgrade.
func TestNodeMetaWire(t *testing.T) {
	b, err := NodeMeta{GRPCAddr: "10.0.0.7:9092", HTTPAddr: "10.0.0.7:9091"}.Encode()
	require.NoError(t, err)
	want := append(append(append([]byte{1, 13}, "10.0.0.7:9092"...), 13), "10.0.0.7:9091"...)
	require.Equal(t, append(want, 0), b, "flags 0: serving")
	b, err = NodeMeta{GRPCAddr: "10.0.0.7:9092", HTTPAddr: "10.0.0.7:9091", Joining: true}.Encode()
	require.NoError(t, err)
	require.Equal(t, append(want, 1), b, "flags 1: joining")
}

func TestNodeMetaRoundTrip(t *testing.T) {
	for name, m := range map[string]NodeMeta{
		"empty":       {},
		"ipv4":        {GRPCAddr: "10.0.0.7:9092", HTTPAddr: "10.0.0.7:9091"},
		"ipv6":        {GRPCAddr: "[fd00::7]:9092", HTTPAddr: "[fd00::7]:9091"},
		"only grpc":   {GRPCAddr: "pushring-0.pushring.monitoring.svc:9092"},
		"long fields": {GRPCAddr: strings.Repeat("g", 200), HTTPAddr: strings.Repeat("h", 200)},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := m.Encode()
			require.NoError(t, err)
			got, err := DecodeNodeMeta(b)
			require.NoError(t, err)
			require.Equal(t, m, got)
		})
	}
}

func TestNodeMetaLaterFieldsIgnored(t *testing.T) {
	b, err := NodeMeta{GRPCAddr: "a:1", HTTPAddr: "b:2"}.Encode()
	require.NoError(t, err)
	got, err := DecodeNodeMeta(append(b, 3, 'x', 'y', 'z')) // a field a later version 1 adds after the flags
	require.NoError(t, err)
	require.Equal(t, NodeMeta{GRPCAddr: "a:1", HTTPAddr: "b:2"}, got)
}

func TestDecodeNodeMetaRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"nil":               nil,
		"unknown version":   {2, 0, 0},
		"version 0":         {0, 0, 0},
		"no fields":         {1},
		"second missing":    {1, 1, 'a'},
		"field truncated":   {1, 5, 'a', 'b'},
		"length overflows":  {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"varint unfinished": {1, 0x80},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeNodeMeta(b)
			require.ErrorIs(t, err, ErrInvalidMeta)
		})
	}
}

func TestNodeMetaTooLarge(t *testing.T) {
	_, err := NodeMeta{GRPCAddr: strings.Repeat("g", memberlist.MetaMaxSize)}.Encode()
	require.ErrorContains(t, err, "memberlist allows 512")
}

// FuzzDecodeNodeMeta checks that no input panics the decoder, which reads
// what any host on the gossip network sends, and that what decodes
// re-encodes to the same metadata.
func FuzzDecodeNodeMeta(f *testing.F) {
	good, _ := NodeMeta{GRPCAddr: "10.0.0.7:9092", HTTPAddr: "10.0.0.7:9091"}.Encode()
	for _, seed := range [][]byte{good, {}, {1}, {1, 0, 0}, {2, 0, 0}, {1, 0x80}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeNodeMeta(b)
		if err != nil {
			return
		}
		again, err := m.Encode()
		if err != nil {
			return // fields that fit in b fit here unless b was over the limit
		}
		back, err := DecodeNodeMeta(again)
		require.NoError(t, err)
		require.Equal(t, m, back)
	})
}

func TestNodeMetaJoiningFlag(t *testing.T) {
	for _, joining := range []bool{false, true} {
		b, err := NodeMeta{GRPCAddr: "10.0.0.1:9092", HTTPAddr: "10.0.0.1:9091", Joining: joining}.Encode()
		require.NoError(t, err)
		got, err := DecodeNodeMeta(b)
		require.NoError(t, err)
		require.Equal(t, joining, got.Joining)
	}
	// A peer of an earlier release sends no flags byte: it serves.
	old := []byte{1, 3, 'a', ':', '1', 3, 'b', ':', '2'}
	got, err := DecodeNodeMeta(old)
	require.NoError(t, err)
	require.Equal(t, NodeMeta{GRPCAddr: "a:1", HTTPAddr: "b:2"}, got)
}
