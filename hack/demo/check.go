/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// advance takes the demo's own steps when their time has come: authorize the sample
// account once the component has a token, then find out whether the manager refreshes
// authorizer tokens.
func (o *observer) advance(ctx context.Context) error {
	d := o.d
	if o.component.last == nil {
		return nil
	}
	if !o.controllerKnown {
		if err := o.detectAuthorizerController(ctx); err != nil {
			return err
		}
	}
	if !o.authorized && !time.Now().Before(o.nextAuthorize) {
		if err := o.authorize(ctx); err != nil {
			o.authorizeTries++
			o.authorizeErr = err.Error()
			o.event("authorizing failed (attempt %d): %v", o.authorizeTries, err)
			if o.authorizeTries >= 3 && d.opts.check {
				return fmt.Errorf("authorizing the sample account failed 3 times: %w", err)
			}
			o.nextAuthorize = time.Now().Add(5 * time.Second)
		}
	}
	return nil
}

// authorize plays the account's administrator: open the receiver's authorization start
// page (which gets a fresh pre_auth_code from the manager), click its link in the simulator,
// which pushes `authorized` to the receiver, and follow WeChat's redirect to the landing page.
func (o *observer) authorize(ctx context.Context) error {
	d := o.d
	s := d.samples
	step("an account authorizes the platform: %s (%s) → %s, through the receiver's start page", s.authorizerAppID, "Demo Coffee", s.componentName)
	link, err := d.fetchStartPage(ctx)
	if err != nil {
		return err
	}
	status, body, err := d.simPost(ctx, "/admin/open-link", map[string]any{
		"link":             link,
		"referer":          d.startPageURL(),
		"authorizer_appid": s.authorizerAppID,
	})
	if err != nil {
		return err
	}
	var res struct {
		InfoType    string `json:"info_type"`
		RedirectURL string `json:"redirect_url"`
		Push        struct {
			Delivered bool   `json:"delivered"`
			Attempts  int    `json:"attempts"`
			LastError string `json:"last_error"`
		} `json:"push"`
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &res)
	if status != http.StatusOK {
		return fmt.Errorf("/admin/open-link: HTTP %d: %s", status, res.Error)
	}
	if title, err := d.followRedirect(ctx, res.RedirectURL); err != nil {
		o.event("WeChat's redirect to the receiver's landing page failed: %v", err)
	} else {
		info("WeChat redirected the browser to the receiver's landing page: %q", title)
	}
	o.authorized = true
	o.authorizePush = res.Push.Delivered
	if !res.Push.Delivered {
		o.event("the simulator's %q push was NOT delivered to the receiver after %d attempts: %s", res.InfoType, res.Push.Attempts, res.Push.LastError)
	} else {
		o.event("authorized: the simulator pushed %q to the receiver, which answered \"success\"", res.InfoType)
	}
	if o.controllerKnown && !o.authorizerCtrl {
		info("this manager has no WeChatAuthorizer controller yet: the code stays in status and no authorizer token is issued")
	}
	return nil
}

// detectAuthorizerController looks at the manager's metrics: controller-runtime exports
// per-controller series from the moment a controller starts.
func (o *observer) detectAuthorizerController(ctx context.Context) error {
	d := o.d
	status, body, err := httpJSON(ctx, "GET", d.managerMetrics, nil)
	if err != nil || status != http.StatusOK {
		return nil //nolint:nilerr // not up yet: try again next second
	}
	has := func(name string) bool { return bytes.Contains(body, []byte(`controller="`+name+`"`)) }
	if !has(componentControllerName) {
		return nil // not started yet
	}
	o.controllerKnown = true
	o.authorizerCtrl = has(authorizerControllerName)
	switch d.opts.authorizers {
	case "on":
		if !o.authorizerCtrl {
			return fmt.Errorf("--authorizers=on (DEMO_AUTHORIZERS=1) but the manager runs no %q controller", authorizerControllerName)
		}
		o.assertAuthorizer = true
	case "auto":
		o.assertAuthorizer = o.authorizerCtrl
	}
	if d.opts.check {
		if o.assertAuthorizer {
			info("the manager runs the WeChatAuthorizer controller: authorizer tokens are checked too")
		} else {
			info("authorizer tokens are not checked (--authorizers=%s, controller running: %v); the authorization push and the receiver recording the code are", d.opts.authorizers, o.authorizerCtrl)
		}
	}
	return nil
}

// missing lists what the check still waits for; empty means it passed.
func (o *observer) missing() []string {
	d := o.d
	want := d.opts.refreshes
	var m []string
	m = append(m, trackMissing(o.component, want)...)
	if !o.ticketReceived {
		m = append(m, "WeChatComponent TicketReceived=True")
	}
	if !o.componentReady {
		m = append(m, "WeChatComponent Ready=True")
	}
	if !o.authorized {
		m = append(m, "the sample account authorized through the simulator")
	} else if !o.authorizePush {
		m = append(m, "the `authorized` push delivered to the receiver")
	}
	if !o.controllerKnown {
		m = append(m, "the manager's controllers seen in its metrics")
	}
	switch {
	case o.assertAuthorizer:
		m = append(m, trackMissing(o.authorizer, want)...)
		if !o.authorizerAuth {
			m = append(m, "WeChatAuthorizer Authorized=True")
		}
		if !o.authorizerReady {
			m = append(m, "WeChatAuthorizer Ready=True")
		}
		m = append(m, o.jsapi.missing(min(want, 1))...)
		m = append(m, o.discovery.missing()...)
	case o.controllerKnown && !o.authorizerCtrl && o.authorized:
		// Without the controller nobody exchanges the code, so the receiver's work is visible.
		if !o.codeRecorded {
			m = append(m, "the authorization code recorded in the WeChatAuthorizer's status by the receiver")
		}
	}
	return m
}

func trackMissing(t *tokenTrack, refreshes int) []string {
	var m []string
	if t.problem != "" {
		m = append(m, "no problem with "+t.secret+" (found: "+t.problem+")")
	}
	if t.last == nil {
		return append(m, fmt.Sprintf("%s token issued into Secret %s", t.kind, t.secret))
	}
	if t.refreshes < refreshes {
		m = append(m, fmt.Sprintf("%s token in Secret %s refreshed %d time(s) (so far %d)", t.kind, t.secret, refreshes, t.refreshes))
	}
	if !t.verifiedLast || t.verified < t.refreshes+1 {
		m = append(m, fmt.Sprintf("every %s token accepted by the simulator (so far %d of %d)", t.kind, t.verified, t.refreshes+1))
	}
	return m
}

// printState prints `kubectl get wxc,wxa -o wide` and the token Secrets' expiry.
func (d *demo) printState(ctx context.Context) {
	o := d.obs
	now := time.Now()
	fmt.Printf("\n---- %s (+%s) %s\n", now.Format(time.TimeOnly), now.Sub(d.started).Round(time.Second), strings.Repeat("-", 50))
	fmt.Printf("$ kubectl get wxc,wxa -n %s -o wide\n", d.opts.namespace)
	cmd := exec.CommandContext(ctx, d.kubectl, "--kubeconfig", d.adminKubeconfig, "get", "wxc,wxa", "-n", d.opts.namespace, "-o", "wide")
	out, err := cmd.CombinedOutput()
	fmt.Print(string(out))
	if err != nil && ctx.Err() == nil {
		fmt.Printf("(kubectl: %v)\n", err)
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOKEN SECRET\tEXPIRES AT\tEXPIRES IN\tTOKEN-HASH\tREFRESHES\tWORKS")
	for _, t := range []*tokenTrack{o.component, o.authorizer} {
		if t.last == nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\n", t.secret)
			continue
		}
		works := "yes"
		if !t.verifiedLast {
			works = "?"
		} else if t.verified < t.refreshes+1 {
			works = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", t.secret, t.last.expiresAt.Format(time.TimeOnly),
			time.Until(t.last.expiresAt).Round(time.Second), t.last.hash, t.refreshes, works)
	}
	_ = tw.Flush()
	fmt.Println()
}

// printSummary prints what the check proved and how many WeChat calls it took.
func (o *observer) printSummary(ctx context.Context) {
	d := o.d
	step("result")
	info("component token: issued, refreshed %d time(s), every value accepted by the simulator", o.component.refreshes)
	if o.assertAuthorizer {
		info("authorizer token: issued, refreshed %d time(s), every value accepted by the simulator", o.authorizer.refreshes)
		info("jsapi_ticket (spec.tickets): issued, refreshed %d time(s) on its own schedule", o.jsapi.refreshes)
		info("discovery (spec.authorizers.discover): %s found by one list pass and Ready without re-authorization", discoveredAppID)
	} else {
		info("authorizer token: not checked (WeChatAuthorizer controller running: %v); the receiver recorded the authorization code", o.authorizerCtrl)
	}
	status, body, err := d.simGet(ctx, "/admin/counters")
	if err != nil || status != http.StatusOK {
		return
	}
	var counters struct {
		Counters map[string]map[string]struct {
			Calls  int `json:"calls"`
			Errors int `json:"errors"`
		} `json:"counters"`
	}
	if json.Unmarshal(body, &counters) != nil {
		return
	}
	apis := make([]string, 0, len(counters.Counters))
	for api := range counters.Counters {
		apis = append(apis, api)
	}
	slices.Sort(apis)
	info("calls the simulator counted (the demo's checks that each token works made the get_api_domain_ip calls and all but the start page's one api_create_preauthcode):")
	for _, api := range apis {
		// A call naming an authorizer is counted under both appids: count each call once,
		// under the component when it names it.
		byAppID := counters.Counters[api]
		c, ok := byAppID[d.samples.componentAppID]
		if !ok {
			for _, v := range byAppID {
				c.Calls += v.Calls
				c.Errors += v.Errors
			}
		}
		info("  %-24s %3d calls, %d errors", api, c.Calls, c.Errors)
	}
}

// httpJSON sends body (if any) as JSON and returns the status and response body.
func httpJSON(ctx context.Context, method, u string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, data, err
}
