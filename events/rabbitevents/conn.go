package rabbitevents

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/grey-distributed/grey/greyerr"
)

// Reconnection backoff bounds.
const (
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 10 * time.Second
	dialTimeout = 5 * time.Second
	// setupTimeout bounds declaring the topology on a new connection.
	setupTimeout = 30 * time.Second
	heartbeat    = 10 * time.Second
)

// session keeps one AMQP connection open: it dials, runs setup on every
// new connection, and when the connection (or a channel setup registered)
// closes it runs teardown and dials again with exponential backoff.
type session struct {
	url  string
	name string      // connection_name shown by the broker
	tls  *tls.Config // amqps:// connections' (nil: the system's CAs)
	// setup declares the topology and opens channels on a new connection;
	// an error closes the connection and counts as a failed attempt.
	setup func(conn *amqp.Connection, gen uint64) error
	// teardown forgets everything bound to generation gen (delivery tags,
	// channels) after its connection closed.
	teardown func(gen uint64, cause error)
	// changed is called (without locks held) after every state change.
	changed func()

	mu      sync.Mutex
	conn    *amqp.Connection
	raw     net.Conn // conn's socket, closed by kill
	gen     uint64
	lastErr error // why the last attempt failed or the connection closed
	// blocked is the broker's reason for blocking generation blockedGen's
	// publishes (connection.blocked: a memory or disk alarm), "" if none.
	blocked    string
	blockedGen uint64
	tried      bool          // an attempt finished since start
	change     chan struct{} // closed and replaced on every state change

	cancel context.CancelFunc
	done   chan struct{}
}

func newSession(rawURL, name string, tc *tls.Config) *session {
	return &session{url: rawURL, name: name, tls: tc, done: make(chan struct{}), change: make(chan struct{})}
}

// start runs the connection loop until stop.
func (s *session) start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.loop(ctx)
}

// stop closes the connection and waits for the loop to end.
func (s *session) stop() {
	s.cancel()
	<-s.done
}

// current returns the open connection and its generation, or nil, 0 and
// the reason there is none (nil while the first attempt is under way).
func (s *session) current() (*amqp.Connection, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		return s.conn, s.gen, nil
	}
	if !s.tried {
		return nil, 0, nil
	}
	err := s.lastErr
	if err == nil {
		err = errors.New("not connected")
	}
	return nil, 0, err
}

// wait returns the open connection; while the first attempt is under way
// it waits for it (or ctx). Without a connection it returns the reason,
// coded (Unavailable, PermissionDenied...).
func (s *session) wait(ctx context.Context, what string) (*amqp.Connection, uint64, error) {
	for {
		conn, gen, err := s.current()
		if conn != nil {
			return conn, gen, nil
		}
		if err != nil {
			return nil, 0, coded(err, "rabbitmq %s: broker not connected", what)
		}
		s.mu.Lock()
		ch := s.change
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-ch:
		}
	}
}

func (s *session) notify() {
	s.mu.Lock()
	close(s.change)
	s.change = make(chan struct{})
	s.mu.Unlock()
	if s.changed != nil {
		s.changed()
	}
}

func (s *session) loop(ctx context.Context) {
	defer close(s.done)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = minBackoff
	b.MaxInterval = maxBackoff
	for {
		conn, gen, err := s.connect()
		if err != nil {
			s.mu.Lock()
			s.lastErr, s.tried = err, true
			s.mu.Unlock()
			s.notify()
			select {
			case <-ctx.Done():
				return
			case <-time.After(b.NextBackOff()):
			}
			continue
		}
		b.Reset()
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		s.notify()
		var cause error
		select {
		case <-ctx.Done():
			cause = errors.New("closed")
		case e, ok := <-closed:
			if ok && e != nil {
				cause = e
			} else {
				cause = amqp.ErrClosed
			}
		}
		s.mu.Lock()
		s.conn, s.raw = nil, nil
		if s.lastErr == nil {
			s.lastErr = cause
		}
		s.mu.Unlock()
		if s.teardown != nil {
			s.teardown(gen, cause)
		}
		_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
		s.notify()
		if ctx.Err() != nil {
			return
		}
	}
}

// closeTimeout bounds closing a connection: Close waits for the broker's
// close-ok, and a broker that is going down (killed, partitioned) may never
// send it, which would hang the driver's Close and everything waiting on it.
const closeTimeout = 5 * time.Second

// kill closes the socket of generation gen's connection (if it is still
// the current one) without the AMQP close handshake, so that the session
// reconnects; reason becomes the session's last error.
//
// It is for a connection the broker keeps alive but no longer serves: a
// RabbitMQ node that stops reading a connection's socket (a channel
// blocked by flow control towards a queue that never answers, a resource
// alarm) still sends heartbeats, so neither amqp091 nor the broker ever
// closes it, publisher confirms never come, and Connection.Close waits
// for a close-ok that never comes either. Closing the socket is the one
// way out that cannot block: the reader fails, amqp091 shuts the
// connection down (nacking every pending confirm) and the loop dials a
// new connection.
func (s *session) kill(gen uint64, reason error) {
	s.mu.Lock()
	raw := s.raw
	if gen != s.gen || raw == nil {
		s.mu.Unlock()
		return
	}
	s.raw = nil
	s.lastErr = reason
	s.mu.Unlock()
	_ = raw.Close()
}

func (s *session) connect() (*amqp.Connection, uint64, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(s.name)
	var raw net.Conn
	dial := amqp.DefaultDial(dialTimeout)
	var tc *tls.Config
	if s.tls != nil {
		tc = s.tls.Clone() // amqp091 fills in ServerName
	}
	conn, err := amqp.DialConfig(s.url, amqp.Config{
		Heartbeat:       heartbeat,
		Properties:      props,
		TLSClientConfig: tc,
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := dial(network, addr)
			raw = c
			return c, err
		},
	})
	if err != nil {
		if untrustedCert(err) {
			return nil, 0, greyerr.Wrap(greyerr.Unauthenticated, err, "rabbitmq: TLS: the broker's certificate does not verify (check events.rabbitmq.tls.ca_file or the URL's cacertfile)")
		}
		return nil, 0, err
	}
	s.mu.Lock()
	s.gen++
	gen := s.gen
	s.raw = raw
	s.mu.Unlock()
	s.watchBlocked(conn, gen)
	if s.setup != nil {
		// A broker that accepted the connection but does not answer its
		// declarations would hold setup (and so the loop) for ever.
		timer := time.AfterFunc(setupTimeout, func() {
			s.kill(gen, fmt.Errorf("rabbitmq: the broker did not answer the connection's setup within %v", setupTimeout))
		})
		err := s.setup(conn, gen)
		timer.Stop()
		if err != nil {
			_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
			if s.teardown != nil {
				s.teardown(gen, err)
			}
			return nil, 0, err
		}
	}
	s.mu.Lock()
	s.conn, s.lastErr, s.tried = conn, nil, true
	s.mu.Unlock()
	return conn, gen, nil
}

// watchChannel closes conn when ch closes, so that a channel error (say,
// a declaration refused) goes through the same reconnection as a lost
// connection.
func watchChannel(conn *amqp.Connection, ch *amqp.Channel) {
	c := ch.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		if _, ok := <-c; ok {
			_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
		}
	}()
}

// coded gives err its greyerr code: refused credentials or vhost are
// PermissionDenied, a declaration the broker refused (a queue that exists
// with other arguments) is FailedPrecondition, a missing entity NotFound,
// everything else (network, broker restart, closed channel) Unavailable.
func coded(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	var ge *greyerr.Error
	if errors.As(err, &ge) {
		return &greyerr.Error{Code: ge.Code, Message: msg, Err: err}
	}
	code := greyerr.Unavailable
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.AccessRefused, amqp.NotAllowed:
			code = greyerr.PermissionDenied
		case amqp.PreconditionFailed, amqp.NotImplemented, amqp.CommandInvalid:
			code = greyerr.FailedPrecondition
		case amqp.NotFound:
			code = greyerr.NotFound
		}
	}
	if errors.Is(err, amqp.ErrSASL) || errors.Is(err, amqp.ErrCredentials) {
		code = greyerr.PermissionDenied
	}
	var ne net.Error
	if errors.As(err, &ne) {
		code = greyerr.Unavailable
	}
	return &greyerr.Error{Code: code, Message: msg, Err: err}
}

// checkURL parses u as amqp091 does, refusing what it would refuse, with
// an error that does not quote the password (amqp091's errors never
// include the URL).
func checkURL(u *url.URL) (string, error) {
	raw := u.String()
	if _, err := amqp.ParseURI(raw); err != nil {
		return "", greyerr.Invalid("events.rabbitmq.url", "%s: %v", u.Redacted(), err)
	}
	return raw, nil
}

// confirmed runs publish then await, the two halves of a publish with
// confirms on generation gen's connection. The broker has timeout to make
// progress: each message written and each confirm received (the halves
// call progress) starts the timeout again, so a broker that confirms
// slowly but steadily (a quorum queue catching up after a restart) is
// waited for, and only one that goes quiet is not. When the time runs out
// the connection is taken as wedged and killed (see kill), so that the
// caller's retry goes out on a new one; a write still blocked on the
// socket when ctx ends kills it too (amqp091's writes do not watch the
// context). The error is then Unavailable, naming what, the timeout and,
// when the broker said so, the resource alarm that blocks publishing.
func (s *session) confirmed(ctx context.Context, gen uint64, timeout time.Duration, what string,
	publish func(ctx context.Context, progress func()) error, await func(ctx context.Context, progress func()) error) error {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done, writing, quiet atomic.Bool
	writing.Store(true)
	timer := time.AfterFunc(timeout, func() {
		if done.Load() {
			return
		}
		quiet.Store(true)
		s.kill(gen, s.wedged(gen, what, timeout))
		cancel()
	})
	defer timer.Stop()
	progress := func() { timer.Reset(timeout) }
	stop := context.AfterFunc(ctx, func() {
		if !done.Load() && writing.Load() {
			s.kill(gen, greyerr.New(greyerr.Unavailable, "rabbitmq %s: cancelled while blocked writing to the broker; connection closed", what))
		}
	})
	defer stop()
	err := publish(pctx, progress)
	writing.Store(false)
	if err == nil {
		err = await(pctx, progress)
	}
	done.Store(true)
	if err != nil && ctx.Err() == nil && quiet.Load() {
		return s.wedged(gen, what, timeout)
	}
	return err
}

// wedged is the error of a publish the broker stopped answering.
func (s *session) wedged(gen uint64, what string, timeout time.Duration) error {
	if reason := s.blockedBy(gen); reason != "" {
		return greyerr.New(greyerr.Unavailable, "rabbitmq %s: the broker blocks publishing (%s: a resource alarm, see rabbitmq-diagnostics alarms) and confirmed nothing for %v (setting %s); connection closed and opened again", what, reason, timeout, SettingConfirmTimeout)
	}
	return greyerr.New(greyerr.Unavailable, "rabbitmq %s: the broker confirmed nothing for %v (setting %s); connection closed and opened again", what, timeout, SettingConfirmTimeout)
}

// blockedBy is the reason the broker gave for blocking generation gen's
// connection (connection.blocked), or "" while it is not blocked.
func (s *session) blockedBy(gen uint64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blockedGen != gen {
		return ""
	}
	return s.blocked
}

// watchBlocked follows the broker's connection.blocked and
// connection.unblocked notifications for generation gen until conn closes.
func (s *session) watchBlocked(conn *amqp.Connection, gen uint64) {
	c := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	go func() {
		for b := range c {
			s.mu.Lock()
			if s.gen == gen {
				s.blockedGen, s.blocked = gen, ""
				if b.Active {
					s.blocked = b.Reason
					if s.blocked == "" {
						s.blocked = "blocked"
					}
				}
			}
			s.mu.Unlock()
		}
	}()
}

// untrustedCert reports whether err is a TLS handshake that failed on the
// broker's certificate (unknown CA, wrong name, expired).
func untrustedCert(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}
