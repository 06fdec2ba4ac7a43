/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// The demo authorizes through the receiver's authorization start page (spec.authorizePage in
// config/samples), as an administrator's browser would: fetch the page, take its PC link,
// "click" it in the simulator with the page as Referer, then follow WeChat's redirect to the
// receiver's landing page. Nothing here holds a token.

var startPageLink = regexp.MustCompile(`id="pc" href="([^"]+)"`)

// startPageURL is the page on the receiver, the host a platform registers as its 授权发起页域名.
func (d *demo) startPageURL() string {
	return fmt.Sprintf("%s/wechat/%s/%s/authorize", d.receiverBase, d.opts.namespace, d.samples.componentName)
}

// fetchStartPage GETs the start page and returns the PC authorization link on it.
func (d *demo) fetchStartPage(ctx context.Context) (string, error) {
	page := d.startPageURL()
	fmt.Printf("$ curl -s %s\n", page)
	status, body, err := httpGet(ctx, page, "Mozilla/5.0 (demo; desktop)")
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("the start page answered HTTP %d", status)
	}
	m := startPageLink.FindStringSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("the start page has no PC link")
	}
	link := html.UnescapeString(m[1])
	info("HTTP 200: a page with a button to WeChat's authorization page (and one for inside WeChat); the link:")
	info("%s", redactPreAuthCode(link))
	return link, nil
}

// followRedirect opens WeChat's redirect (the receiver's landing page) and returns its title.
func (d *demo) followRedirect(ctx context.Context, u string) (string, error) {
	status, body, err := httpGet(ctx, u, "Mozilla/5.0 (demo; desktop)")
	if err != nil {
		return "", err
	}
	title := body
	if i, j := strings.Index(body, "<h1>"), strings.Index(body, "</h1>"); i >= 0 && j > i {
		title = body[i+4 : j]
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("the landing page answered HTTP %d (%s)", status, title)
	}
	return title, nil
}

var (
	preAuthCodeParam = regexp.MustCompile(`pre_auth_code=[^&]*`)
	stateParam       = regexp.MustCompile(`state%3D[^&]*`)
)

// redactPreAuthCode keeps the single-use code and the landing page's state out of the output.
func redactPreAuthCode(link string) string {
	return stateParam.ReplaceAllString(preAuthCodeParam.ReplaceAllString(link, "pre_auth_code=…"), "state%3D…")
}

func httpGet(ctx context.Context, u, userAgent string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(data), err
}
