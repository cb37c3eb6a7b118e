package pipe

import "time"

// The idle limit is one timer per pipe that is not reset on every transfer:
// transfers only store a timestamp, and the timer, when it fires, re-arms
// itself for the time still left.

// touch records activity now.
func (p *pipe) touch() { p.last.Store(int64(time.Since(p.res.Start))) }

// setIdleLocked arms the idle timer for limit; p.h.mu is held.
func (p *pipe) setIdleLocked(limit time.Duration, why Reason) {
	p.idleAfter, p.lingering = limit, why == ReasonLinger
	if p.idle == nil {
		p.idle = time.AfterFunc(limit, p.onIdle)
		return
	}
	p.idle.Reset(limit)
}

// onIdle ends the pipe when nothing moved for the idle limit, else re-arms.
func (p *pipe) onIdle() {
	p.h.mu.Lock()
	if p.stopping.Load() {
		p.h.mu.Unlock()
		return
	}
	quiet := time.Since(p.res.Start) - time.Duration(p.last.Load())
	if left := p.idleAfter - quiet; left > 0 {
		p.idle.Reset(left)
		p.h.mu.Unlock()
		return
	}
	why := ReasonIdleTimeout
	if p.lingering {
		why = ReasonLinger
	}
	p.h.mu.Unlock()
	p.stopWith(why)
}
