package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/pipegate/pipegate/pipe"
)

// Moving established pairs to another process (a binary upgrade): the old
// process stops accepting (StopAccepting), then HandOver detaches every
// pair that can leave (pipe.Engine.DetachAll) and gives it, with the
// PairState its log line needs, to a send function that carries both to
// the new process; there Adopt gives it to the forward of the same listen
// address, whose afterClose logs it once, with the totals of both
// processes. A pair that leaves is counted out of the old forward (its
// connection limits, its open gauge, its engine's drain) without a log
// line. Pairs that cannot leave (see pipe.ErrNotDetachable) drain in the
// old process.
//
//	// old process, once the new one serves:
//	d.StopAccepting(ctx)
//	sent, stayed, err := d.HandOver(ctx, func(p *pipe.Detached, st forward.PairState) error {
//		return sendToNewProcess(p, st) // p.A, p.B, p.State and st
//	})
//	// new process, for each pair received:
//	err := d.Adopt(p, st) // ErrNoForward: the forward is gone; p is closed
//
// Each forward's pipes carry its listen address as configured
// (Config.Listen) as their tag (pipe.Acceptor.Tag, pipe.Handle.SetTag):
// the name under which the listener itself is handed over.

// ErrNoForward is returned (wrapped) by Adopt for a pair whose forward is
// not in this process's configuration; the pair is closed.
var ErrNoForward = errors.New("forward: no forward listens on that address")

// PairState is what a forward knows of an established pair besides its
// pipe: what its log line says. It travels with the pipe to the process
// that adopts it (JSON).
type PairState struct {
	Forward  string         `json:"forward"`            // the forward's Config.Listen: the pipe's tag
	Client   netip.AddrPort `json:"client"`             // the client (from the PROXY header, if any); zero for a Unix socket
	Peer     netip.AddrPort `json:"peer"`               // the TCP peer (a load balancer with AcceptProxy)
	Local    netip.AddrPort `json:"local"`              // the address the client connected to, when known
	SNI      string         `json:"sni,omitempty"`      // TLS server name
	Upstream string         `json:"upstream,omitempty"` // as configured
	Start    time.Time      `json:"start"`              // when the connection was accepted
	// ProxyHeader is the length of a PROXY header the loops sent the
	// upstream as the pair's first bytes, which its byte count includes
	// and the log and metrics leave out.
	ProxyHeader int `json:"proxy_header,omitempty"`
}

// livePair is a forward's bookkeeping of one piped pair: released by the
// pair's afterClose, or by left when the pair leaves the process.
type livePair struct {
	g       *generation
	info    *connInfo
	release func()
}

// pairKey names a pair by its client socket: the addresses of a TCP
// socket, else (a Unix socket) its inode.
type pairKey struct {
	local, peer netip.AddrPort
	ino         uint64
}

// pairBook is a Server's piped pairs, by their client socket, for
// HandOver to find what a detached pipe is.
type pairBook struct {
	mu    sync.Mutex
	pairs map[pairKey]*livePair
}

// file files p under k, its client socket's key, when it has one (keyed);
// unfile takes it out again (unless a newer pair reuses the key).
func (b *pairBook) file(p *livePair, k pairKey, keyed bool) (unfile func()) {
	if !keyed {
		return func() {}
	}
	b.add(k, p)
	return func() { b.remove(k, p) }
}

func (b *pairBook) add(k pairKey, p *livePair) {
	b.mu.Lock()
	if b.pairs == nil {
		b.pairs = map[pairKey]*livePair{}
	}
	b.pairs[k] = p
	b.mu.Unlock()
}

// remove removes p (not a newer pair that reuses its addresses).
func (b *pairBook) remove(k pairKey, p *livePair) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pairs[k] != p {
		return false
	}
	delete(b.pairs, k)
	return true
}

func (b *pairBook) lookup(k pairKey) *livePair {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pairs[k]
}

// tag is the tag of g's pipes.
func (g *generation) tag() string { return g.cfg.Listen }

// state is what info says, as a PairState of forward tag.
func (info *connInfo) state(tag string) PairState {
	return PairState{
		Forward: tag, Client: info.client, Peer: info.peer, Local: info.local,
		SNI: info.serverName, Upstream: info.upstream, Start: info.start, ProxyHeader: info.proxyHeader,
	}
}

// sendPairs detaches the server's pairs that can leave and gives each to
// send; one sent is counted out here (left), without a log line.
func (s *Server) sendPairs(ctx context.Context, send func(*pipe.Detached, PairState) error) (sent, stayed int, err error) {
	s.mu.Lock()
	engines := slices.Clone(s.engines)
	s.mu.Unlock()
	tag := s.gen.Load().tag()
	for _, e := range engines {
		n, err := e.DetachAll(ctx, func(p *pipe.Detached) error {
			lp, k, booked := s.pairOf(p)
			st := lp.info.state(tag)
			p.Tag = tag
			if err := send(p, st); err != nil {
				return err
			}
			if lp.release != nil && (!booked || s.pairs.remove(k, lp)) {
				lp.left()
			}
			sent++
			return nil
		})
		stayed += n
		if err != nil {
			return sent, stayed, fmt.Errorf("forward %s: hand-over: %w", s.gen.Load().name, err)
		}
	}
	return sent, stayed, nil
}

// pairOf finds what the server knows of a detached pair, with its client
// socket's key k: a pair the event loops accepted carries its loopDial
// (Setup.Value); one on the Go path is looked up by k (booked). One found
// nowhere gets a livePair of its socket's addresses alone (release nil:
// nothing to count out). The local address, unknown to a loop pair that
// sends no PROXY header, is read from the socket now.
func (s *Server) pairOf(p *pipe.Detached) (lp *livePair, k pairKey, booked bool) {
	if d, ok := p.Value.(*loopDial); ok && d.live != nil {
		lp = d.live
	}
	k, keyed := fileKey(p.A)
	if lp == nil && keyed {
		lp = s.pairs.lookup(k)
		booked = lp != nil
	}
	if lp == nil {
		return &livePair{info: &connInfo{client: k.peer, peer: k.peer, local: k.local}}, k, false
	}
	if !lp.info.local.IsValid() && keyed {
		lp.info.local = k.local
	}
	return lp, k, booked
}

// left releases the bookkeeping of a pair that moved to another process:
// its connection limits and open gauge. No log line: the adopting process
// writes it.
func (lp *livePair) left() {
	lp.release()
	lp.g.metrics.left()
}

// adopt carries on a pair of this forward that another process sent.
func (s *Server) adopt(p *pipe.Detached, st PairState) error {
	g := s.gen.Load()
	k, keyed := fileKey(p.A) // before Adopt closes p.A
	info := &connInfo{start: st.Start, peer: st.Peer, client: st.Client, local: st.Local, serverName: st.SNI, upstream: st.Upstream,
		proxyHeader: max(st.ProxyHeader, 0)}
	release, err := g.conns.Acquire(info.client.Addr())
	if err != nil {
		release = func() {} // over this config's limits: adopted all the same, not counted
	}
	lp := &livePair{g: g, info: info, release: release}
	unfile := s.pairs.file(lp, k, keyed)
	closed := func(r pipe.Result) {
		unfile()
		if info.start.IsZero() {
			i := *info
			i.start = r.Start
			s.finished(g, &i, release, r)
			return
		}
		s.finished(g, info, release, r)
	}
	g.metrics.adopted()
	p.Tag = g.tag()
	if _, err := g.engine.Adopt(p, closed); err != nil {
		unfile()
		lp.left()
		return fmt.Errorf("forward %s: adopt: %w", g.name, err)
	}
	return nil
}

// HandOver detaches the pairs of every running forward that can leave and
// gives each to send with its PairState (see above); a pair sent is
// counted out of its forward without a log line. Call it after
// StopAccepting. When send fails, that pair and those not yet detached go
// on here (see pipe.Engine.DetachAll) and the error is returned; the same
// when ctx ends. It returns how many pairs were sent and how many stayed.
// Forwards that a reload removed drain their pairs here.
func (s *Set) HandOver(ctx context.Context, send func(*pipe.Detached, PairState) error) (sent, stayed int, err error) {
	s.mu.Lock()
	servers := make([]*Server, 0, len(s.servers))
	for _, r := range s.servers {
		servers = append(servers, r.srv)
	}
	s.mu.Unlock()
	for _, srv := range servers {
		n, m, err := srv.sendPairs(ctx, send)
		sent += n
		stayed += m
		if err != nil {
			return sent, stayed, err
		}
	}
	return sent, stayed, nil
}

// Adopt carries on a pair that another process's HandOver sent: the
// running forward whose Config.Listen is st.Forward adopts it
// (pipe.Engine.Adopt) and logs it once, when it closes, as one of its own,
// with the bytes of both processes. The pair counts in the forward's
// limits (one over them is adopted all the same) and metrics. Adopt uses p
// up; on error (ErrNoForward, or the engine's) the pair is closed.
func (s *Set) Adopt(p *pipe.Detached, st PairState) error {
	s.mu.Lock()
	var srv *Server
	for _, r := range s.servers {
		if r.listen == st.Forward {
			srv = r.srv
			break
		}
	}
	s.mu.Unlock()
	if srv == nil {
		p.Wipe()
		return fmt.Errorf("%w: %q", ErrNoForward, st.Forward)
	}
	return srv.adopt(p, st)
}

// HandOver is Set.HandOver for the daemon's forwards (after
// StopAccepting); it logs how many pairs were sent and stayed.
func (d *Daemon) HandOver(ctx context.Context, send func(*pipe.Detached, PairState) error) (sent, stayed int, err error) {
	sent, stayed, err = d.set.HandOver(ctx, send)
	d.log.Info("upgrade: pairs handed over", "sent", sent, "stayed", stayed, "err", err)
	return sent, stayed, err
}

// Adopt is Set.Adopt for the daemon's forwards; call it once Run serves
// (OnServing).
func (d *Daemon) Adopt(p *pipe.Detached, st PairState) error { return d.set.Adopt(p, st) }

// noZone is ap without its IPv6 zone (socket addresses read back carry none).
func noZone(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

// Log returns the daemon's logger, for what its caller logs about it (a
// hand-over's messages).
func (d *Daemon) Log() *slog.Logger { return d.log }
