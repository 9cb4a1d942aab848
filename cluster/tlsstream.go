package cluster

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tlsStream is a raft.StreamLayer over mutual TLS: it accepts only peers
// the server config verifies and dials with the client config, so that a
// node with a certificate from another CA can neither send to nor receive
// from this one (its handshake fails, and so does every RPC).
type tlsStream struct {
	ln        net.Listener
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config
}

var _ raft.StreamLayer = (*tlsStream)(nil)

// newTLSStream listens on bind; advertise (nil: the bound address) is the
// address peers are told to dial.
func newTLSStream(bind string, advertise net.Addr, server, client *tls.Config) (*tlsStream, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if a, ok := advertise.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, fmt.Errorf("raft: %s is not an address peers can dial (set raft.advertise)", advertise)
	}
	return &tlsStream{ln: ln, advertise: advertise, server: server, client: client}, nil
}

// Accept returns the next connection; its handshake runs on first use, in
// the transport's per-connection goroutine, under a deadline.
func (s *tlsStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: tls.Server(c, s.server)}, nil
}

// Close stops listening.
func (s *tlsStream) Close() error { return s.ln.Close() }

// Addr is the advertised address.
func (s *tlsStream) Addr() net.Addr { return s.advertise }

// Dial connects to a peer and completes the handshake within timeout.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", string(address), s.client)
	if err != nil {
		return nil, fmt.Errorf("raft: TLS to %s: %w", address, err)
	}
	return c, nil
}

// handshakeConn bounds the server-side handshake, so that a peer that
// connects and says nothing does not hold a goroutine forever.
type handshakeConn struct {
	*tls.Conn
	done bool
}

// Read completes the handshake (within 10s) before the first read.
func (c *handshakeConn) Read(b []byte) (int, error) {
	if !c.done {
		c.done = true
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		err := c.Handshake()
		_ = c.SetDeadline(time.Time{})
		if err != nil {
			_ = c.Close()
			return 0, fmt.Errorf("raft: TLS handshake with %s: %w", c.RemoteAddr(), err)
		}
	}
	return c.Conn.Read(b)
}
