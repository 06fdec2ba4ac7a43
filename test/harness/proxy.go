/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"errors"
	"io"
	"net"
	"sync"
)

// ProxyMode is what a Proxy does with connections.
type ProxyMode int

const (
	// ProxyPass forwards every connection to the target.
	ProxyPass ProxyMode = iota
	// ProxyRefuse closes new connections at once (with a reset) and closes the existing
	// ones: the client sees its connections fail the moment it uses them, as when the
	// other side is down.
	ProxyRefuse
	// ProxyBlackhole accepts connections and never answers, as a dropped route or a hung
	// server: the client's own timeout is all that ends a request.
	ProxyBlackhole
)

func (m ProxyMode) String() string {
	switch m {
	case ProxyPass:
		return "pass"
	case ProxyRefuse:
		return "refuse"
	case ProxyBlackhole:
		return "blackhole"
	}
	return "unknown"
}

// Proxy is a TCP proxy on 127.0.0.1 in front of one target address (the simulator, for the
// manager's --wechat-api-url), whose mode a test switches to cut the target off.
type Proxy struct {
	// Addr is host:port the proxy listens on; URL is http://Addr.
	Addr, URL string
	target    string
	ln        net.Listener

	mu       sync.Mutex
	mode     ProxyMode
	conns    map[net.Conn]struct{} // client sides of open connections
	accepted map[ProxyMode]int
	closed   bool
	wg       sync.WaitGroup
}

// StartProxy listens on 127.0.0.1:0 and forwards to target (host:port) in ProxyPass mode.
func StartProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln,
		conns: map[net.Conn]struct{}{}, accepted: map[ProxyMode]int{}}
	p.URL = "http://" + p.Addr
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// SetMode switches the mode. Leaving ProxyPass or ProxyBlackhole closes the connections
// that were open, so that no request started before the switch gets through after it.
func (p *Proxy) SetMode(m ProxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m == p.mode {
		return
	}
	p.mode = m
	p.closeConnsLocked()
}

// Mode is the current mode.
func (p *Proxy) Mode() ProxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Accepted is how many connections were accepted while the proxy was in mode m.
func (p *Proxy) Accepted(m ProxyMode) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted[m]
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.closeConnsLocked()
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) closeConnsLocked() {
	for c := range p.conns {
		resetClose(c)
		delete(p.conns, c)
	}
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			resetClose(c)
			return
		}
		mode := p.mode
		p.accepted[mode]++
		if mode == ProxyRefuse {
			p.mu.Unlock()
			resetClose(c)
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if mode == ProxyBlackhole {
				// Read and drop what the client sends, answer nothing, until a mode switch
				// or Close closes the connection.
				_, _ = io.Copy(io.Discard, c)
			} else {
				p.forward(c)
			}
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
			_ = c.Close()
		}()
	}
}

// forward copies both ways between the client connection and a new one to the target.
func (p *Proxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		resetClose(c)
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(up, c)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(c, up)
		done <- struct{}{}
	}()
	// HTTP needs no half-close: when either side ends, both do (a mode switch closing c
	// must also end a request the target is still holding).
	<-done
	_ = up.Close()
	_ = c.Close()
	<-done
}

// resetClose closes a connection with a TCP reset rather than an orderly shutdown.
func resetClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
