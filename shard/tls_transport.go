package shard

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
)

// TransportTLS is the TLS of gossip: Server for the connections other
// peers open to this one (it must demand and verify a client certificate),
// Client for a connection this peer opens to the peer at a host:port.
type TransportTLS struct {
	Server *tls.Config
	Client func(addr string) *tls.Config
}

// The TLS transport carries memberlist's packets and streams over TLS
// connections on the gossip TCP port; it binds no UDP port. A connection
// starts with one byte saying what it carries: a stream memberlist reads
// and writes itself, or packets, each framed as a 4-byte big-endian length
// and that many bytes, for as long as the connection lives. This peer keeps
// one packet connection to each address it sends packets to.
const (
	connStream byte = 'S'
	connPacket byte = 'P'
	// tlsHandshakeTimeout bounds the TLS handshake and the first byte of a
	// connection: a client that does not prove itself in time is dropped.
	tlsHandshakeTimeout = 10 * time.Second
	// maxGossipPacket bounds one packet. memberlist keeps its packets
	// within its UDP buffer (1400 bytes); a larger frame is not gossip.
	maxGossipPacket = 1 << 20
	// packetIdleTimeout closes a packet connection that carried nothing
	// for this long; probes keep a live peer's connection busy.
	packetIdleTimeout = 2 * time.Minute
	// maxPendingHandshakes bounds the connections in their handshake, so
	// that clients without a certificate cost a bounded number of
	// goroutines.
	maxPendingHandshakes = 64
)

// tlsTransport is a memberlist.Transport over TLS.
type tlsTransport struct {
	tls     *TransportTLS
	logger  *slog.Logger
	ln      net.Listener
	packets chan *memberlist.Packet
	streams chan net.Conn
	pending chan struct{} // handshakes in progress; see maxPendingHandshakes

	mu      sync.Mutex
	out     map[string]*packetConn // outbound packet connections by address
	in      map[net.Conn]struct{}  // inbound connections, closed at shutdown
	closed  bool
	done    chan struct{}
	workers sync.WaitGroup
}

// packetConn is the outbound packet connection to one address.
type packetConn struct {
	mu   sync.Mutex
	conn net.Conn
	w    *bufio.Writer
}

// newTLSTransport listens on bind (host:port, TCP) and accepts TLS
// connections until Shutdown.
func newTLSTransport(bind string, t *TransportTLS, logger *slog.Logger) (*tlsTransport, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("gossip over TLS: listen on %s: %w", bind, err)
	}
	tr := &tlsTransport{
		tls: t, logger: logger, ln: ln,
		packets: make(chan *memberlist.Packet), streams: make(chan net.Conn),
		pending: make(chan struct{}, maxPendingHandshakes),
		out:     map[string]*packetConn{}, in: map[net.Conn]struct{}{}, done: make(chan struct{}),
	}
	tr.workers.Go(tr.accept)
	return tr, nil
}

// FinalAdvertiseAddr is the address other peers reach this one at: ip if
// given, else the bind IP, else (a wildcard bind) a private IP of this
// host; port if given, else the bound port.
func (tr *tlsTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	bound := tr.ln.Addr().(*net.TCPAddr)
	if port == 0 {
		port = bound.Port
	}
	if ip != "" {
		if a := net.ParseIP(ip); a != nil {
			return a, port, nil
		}
		return nil, 0, fmt.Errorf("advertise address %q is not an IP address", ip)
	}
	if !bound.IP.IsUnspecified() {
		return bound.IP, port, nil
	}
	priv, err := sockaddr.GetPrivateIP()
	if err != nil || priv == "" {
		return nil, 0, fmt.Errorf("no private IP address to advertise (set --%s): %v", flagAdvertiseAddress, err)
	}
	return net.ParseIP(priv), port, nil
}

// PacketCh delivers the packets other peers sent.
func (tr *tlsTransport) PacketCh() <-chan *memberlist.Packet { return tr.packets }

// StreamCh delivers the streams other peers opened.
func (tr *tlsTransport) StreamCh() <-chan net.Conn { return tr.streams }

// WriteTo sends one packet to addr over the packet connection to it,
// dialling one if there is none or the last one broke.
func (tr *tlsTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if len(b) > maxGossipPacket {
		return time.Time{}, fmt.Errorf("gossip packet of %d bytes, more than %d", len(b), maxGossipPacket)
	}
	pc, err := tr.packetConnTo(addr)
	if err != nil {
		return time.Time{}, err
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if pc.conn == nil {
			conn, err := tr.dial(addr, tlsHandshakeTimeout, connPacket)
			if err != nil {
				return time.Time{}, err
			}
			if tr.isClosed() {
				_ = conn.Close()
				return time.Time{}, errors.New("gossip transport shut down")
			}
			pc.conn, pc.w = conn, bufio.NewWriter(conn)
		}
		if err = writeFrame(pc.conn, pc.w, b); err == nil {
			return time.Now(), nil
		}
		_ = pc.conn.Close() // broken: the next attempt dials anew
		pc.conn, pc.w = nil, nil
		if attempt > 0 {
			return time.Time{}, fmt.Errorf("gossip packet to %s: %w", addr, err)
		}
	}
}

func writeFrame(conn net.Conn, w *bufio.Writer, b []byte) error {
	if err := conn.SetWriteDeadline(time.Now().Add(tlsHandshakeTimeout)); err != nil {
		return err
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	return w.Flush()
}

// packetConnTo returns the packet connection entry of addr.
func (tr *tlsTransport) packetConnTo(addr string) (*packetConn, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.closed {
		return nil, errors.New("gossip transport shut down")
	}
	pc := tr.out[addr]
	if pc == nil {
		pc = &packetConn{}
		tr.out[addr] = pc
	}
	return pc, nil
}

// DialTimeout opens a stream to addr.
func (tr *tlsTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return tr.dial(addr, timeout, connStream)
}

// dial connects to addr, completes the TLS handshake (the server's
// certificate verified, this peer's presented) and says what the
// connection carries, all within timeout.
func (tr *tlsTransport) dial(addr string, timeout time.Duration, kind byte) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	raw, err := (&net.Dialer{Deadline: deadline}).Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, tr.tls.Client(addr))
	if err := conn.SetDeadline(deadline); err == nil {
		if err = conn.Handshake(); err == nil {
			_, err = conn.Write([]byte{kind})
		}
		if err == nil {
			err = conn.SetDeadline(time.Time{})
		}
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("gossip over TLS to %s: %w", addr, err)
	}
	return conn, nil
}

// accept takes connections until the listener closes.
func (tr *tlsTransport) accept() {
	for {
		raw, err := tr.ln.Accept()
		if err != nil {
			if tr.isClosed() {
				return
			}
			tr.logger.Warn("gossip over TLS: accept", "err", err)
			select {
			case <-tr.done:
				return
			case <-time.After(100 * time.Millisecond): // e.g. out of file descriptors
			}
			continue
		}
		select {
		case tr.pending <- struct{}{}:
		default:
			_ = raw.Close() // too many handshakes at once
			continue
		}
		if !tr.track(raw) {
			<-tr.pending
			_ = raw.Close()
			return
		}
		tr.workers.Go(func() { tr.serve(raw) })
	}
}

// track records an inbound connection, unless the transport shut down.
func (tr *tlsTransport) track(c net.Conn) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.closed {
		return false
	}
	tr.in[c] = struct{}{}
	return true
}

func (tr *tlsTransport) untrack(c net.Conn) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	delete(tr.in, c)
}

// serve runs the handshake of an inbound connection and hands it on:
// a stream to memberlist, packets read here one by one.
func (tr *tlsTransport) serve(raw net.Conn) {
	conn := tls.Server(raw, tr.tls.Server)
	kind, err := handshake(conn)
	<-tr.pending
	if err != nil {
		tr.untrack(raw)
		_ = conn.Close()
		tr.logger.Debug("gossip over TLS: refused a connection", "remote", raw.RemoteAddr().String(), "err", err)
		return
	}
	switch kind {
	case connStream:
		tr.untrack(raw) // memberlist owns it now
		select {
		case tr.streams <- conn:
		case <-tr.done:
			_ = conn.Close()
		}
	case connPacket:
		tr.readPackets(conn)
		tr.untrack(raw)
		_ = conn.Close()
	default:
		tr.untrack(raw)
		_ = conn.Close()
	}
}

// handshake completes the server side of the TLS handshake and reads the
// connection's kind, within tlsHandshakeTimeout.
func handshake(conn *tls.Conn) (byte, error) {
	if err := conn.SetDeadline(time.Now().Add(tlsHandshakeTimeout)); err != nil {
		return 0, err
	}
	if err := conn.Handshake(); err != nil {
		return 0, err
	}
	var kind [1]byte
	if _, err := io.ReadFull(conn, kind[:]); err != nil {
		return 0, err
	}
	return kind[0], conn.SetDeadline(time.Time{})
}

// readPackets delivers the packets of a packet connection until it ends,
// breaks, idles for packetIdleTimeout or sends a frame too large.
func (tr *tlsTransport) readPackets(conn net.Conn) {
	r := bufio.NewReader(conn)
	from := conn.RemoteAddr()
	var n [4]byte
	for {
		if conn.SetReadDeadline(time.Now().Add(packetIdleTimeout)) != nil {
			return
		}
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return
		}
		size := binary.BigEndian.Uint32(n[:])
		if size > maxGossipPacket {
			tr.logger.Warn("gossip over TLS: packet too large; closing the connection", "remote", from.String(), "bytes", size)
			return
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		select {
		case tr.packets <- &memberlist.Packet{Buf: buf, From: from, Timestamp: time.Now()}:
		case <-tr.done:
			return
		}
	}
}

func (tr *tlsTransport) isClosed() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.closed
}

// Shutdown stops listening, closes every connection it holds and waits for
// its goroutines. Later calls do nothing.
func (tr *tlsTransport) Shutdown() error {
	tr.mu.Lock()
	if tr.closed {
		tr.mu.Unlock()
		return nil
	}
	tr.closed = true
	close(tr.done)
	err := tr.ln.Close()
	for c := range tr.in {
		_ = c.Close()
	}
	for _, pc := range tr.out {
		pc.mu.Lock()
		if pc.conn != nil {
			_ = pc.conn.Close()
		}
		pc.mu.Unlock()
	}
	tr.mu.Unlock()
	tr.workers.Wait()
	return err
}

// bindAddress is the gossip listen address with an empty host as 0.0.0.0.
func bindAddress(listen string) string {
	host, port, _ := splitHostPort(listen) // Validate checked it
	if host == "" {
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
