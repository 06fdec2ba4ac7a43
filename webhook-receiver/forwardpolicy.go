/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package receiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Where forwards may go. Whoever may edit a WeChatAuthorizer chooses spec.messages.forward.url,
// and the receiver then POSTs decrypted messages there from inside the cluster, signed with a
// key the manager gave it. So a forward goes only to an in-cluster Service
// (<service>.<namespace>.svc, optionally followed by the cluster domain), or to a host the
// receiver's operator listed (--forward-allowed-hosts); never to a metadata endpoint or
// another link-local, unspecified or multicast address, whatever a name resolves to.

// DefaultClusterDomain is the DNS domain of Services the receiver forwards to without an allow-list.
const DefaultClusterDomain = "cluster.local"

// forwardPolicy decides which forwarding URLs the receiver uses.
type forwardPolicy struct {
	clusterDomain string
	hosts         map[string]bool // exact host names or IP literals, lower case
	suffixes      []string        // ".example.internal": any host under that domain
}

// newForwardPolicy builds the policy from the allow-list entries (a host, an IP literal, or a
// domain suffix starting with ".").
func newForwardPolicy(clusterDomain string, allowed []string) *forwardPolicy {
	if clusterDomain == "" {
		clusterDomain = DefaultClusterDomain
	}
	p := &forwardPolicy{clusterDomain: strings.ToLower(strings.Trim(clusterDomain, ".")), hosts: map[string]bool{}}
	for _, h := range allowed {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "":
		case strings.HasPrefix(h, "."):
			p.suffixes = append(p.suffixes, h)
		default:
			p.hosts[strings.Trim(h, "[]")] = true
		}
	}
	return p
}

// check returns nil when raw may be forwarded to, else why not (safe to log: a URL in spec).
func (p *forwardPolicy) check(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme %q is neither http nor https", u.Scheme)
	case u.User != nil:
		return errors.New("URLs with user information are refused")
	case u.Hostname() == "":
		return errors.New("no host")
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if p.hosts[host] || p.underAllowedSuffix(host) {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return fmt.Errorf("host %s is an IP address; forward to a Service name (<service>.<namespace>.svc) or list it in --forward-allowed-hosts", host)
	}
	if !p.isServiceName(host) {
		return fmt.Errorf("host %s is not an in-cluster Service (<service>.<namespace>.svc[.%s]) and not in --forward-allowed-hosts", host, p.clusterDomain)
	}
	return nil
}

func (p *forwardPolicy) underAllowedSuffix(host string) bool {
	for _, s := range p.suffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			return true
		}
	}
	return false
}

// isServiceName reports host has the shape <service>.<namespace>.svc or <service>.<namespace>.svc.<cluster domain>.
func (p *forwardPolicy) isServiceName(host string) bool {
	rest, ok := strings.CutSuffix(host, ".svc."+p.clusterDomain)
	if !ok {
		if rest, ok = strings.CutSuffix(host, ".svc"); !ok {
			return false
		}
	}
	labels := strings.Split(rest, ".")
	if len(labels) != 2 {
		return false
	}
	for _, l := range labels {
		if !dnsLabel(l) {
			return false
		}
	}
	return true
}

// dnsLabel reports an RFC 1123 label, as Service and namespace names are.
func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// allowsLoopback reports whether the allow-list names a loopback address (tests, a sidecar).
func (p *forwardPolicy) allowsLoopback() bool {
	for h := range p.hosts {
		if a, err := netip.ParseAddr(h); (err == nil && a.IsLoopback()) || h == "localhost" {
			return true
		}
	}
	return false
}

// errForbiddenAddress is a dial refused by the address check.
var errForbiddenAddress = errors.New("forwarding to this address is not allowed")

// dialControl refuses connections to link-local (cloud metadata endpoints), unspecified and
// multicast addresses, and to loopback unless allowed: a Service name can be an ExternalName
// alias to anything, so the check is on the address actually dialled.
func dialControl(allowLoopback bool) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return errForbiddenAddress
		}
		a := ap.Addr().Unmap()
		if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
			a.IsMulticast() || a.IsUnspecified() || (a.IsLoopback() && !allowLoopback) {
			return fmt.Errorf("%w: %s", errForbiddenAddress, a)
		}
		return nil
	}
}

// forwardDialer dials with dialControl.
func forwardDialer(allowLoopback bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: MaxForwardTimeout, KeepAlive: 30 * time.Second, Control: dialControl(allowLoopback)}
	return d.DialContext
}

// redactedURL is u for a log line: scheme, host and path, without user information, query or
// fragment, which may carry a credential (a refused URL is logged once per message).
func redactedURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return "(not a URL)"
	}
	return (&url.URL{Scheme: parsed.Scheme, Host: parsed.Host, Path: parsed.Path}).String()
}
