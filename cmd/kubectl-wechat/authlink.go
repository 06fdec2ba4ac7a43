/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"time"

	"github.com/mdp/qrterminal/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"rsc.io/qr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/authlink"
	"github.com/wechat-operator/wechat-operator/internal/authstate"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

const authLinkUsage = `Usage: kubectl-wechat auth-link COMPONENT --redirect-uri URL [flags]

Creates a pre_auth_code for the WeChatComponent COMPONENT and prints the authorization link
that an official account or mini program administrator opens to authorize the platform.
The link is printed on stdout; what each line is goes to stderr.

  - the PC link (componentloginpage) is always printed. WeChat serves it only to a browser
    that arrives from a page on the platform's authorization domain (授权发起页域名), so put it
    behind a link on such a page rather than pasting it into the address bar;
  - --mobile adds the mobile link (bindcomponent), which the administrator opens inside WeChat;
  - --qr prints the mobile link as a QR code to scan with WeChat.

The link carries a single-use pre_auth_code that expires in about 10 minutes: give it only to
the administrator who will authorize. Nothing else secret is printed.

How it works: it reads the component's token Secret (status.tokenSecretName, by default
COMPONENT-component-token) and its credentials Secret (spec.credentialsSecretRef) with your
kubeconfig, so you need "get" on both, and calls WeChat's api_create_preauthcode from this
machine. WeChat accepts the call only from an IP in the platform's IP whitelist (errcode
61004 otherwise).

--redirect-uri is where WeChat sends the administrator's browser after the authorization,
with auth_code and expires_in appended. Its domain must be the platform's authorization
domain. The operator's receiver serves that page at
  https://RECEIVER-HOST/wechat/NAMESPACE/COMPONENT/authorized
The command adds state=… to the redirect_uri: an HMAC, keyed by a key derived from the
platform's message-verification Token and EncodingAESKey (the credentials Secret's token and
encodingAESKey), over the namespace,
the component and an expiry an hour away. The receiver records codes only from redirects that
carry a valid state, and shows "Authorization link not valid" to any other; so make links with
this command (or sign the state the same way, see docs/authorization.md), and make a new one
after an hour or after changing the Token or the EncodingAESKey.

Examples:
  kubectl wechat auth-link my-platform -n wechat --redirect-uri https://wx.example.com/wechat/wechat/my-platform/authorized
  kubectl wechat auth-link my-platform --redirect-uri https://wx.example.com/wechat/default/my-platform/authorized --auth-type 2 --mobile --qr

Flags:
`

// appIDPattern is the shape of every WeChat appid (as the CRDs validate it).
var appIDPattern = regexp.MustCompile(`^wx[0-9a-f]{16}$`)

const defaultAuthLinkTimeout = 30 * time.Second

type authLinkOptions struct {
	kube        kubeOptions
	component   string
	redirectURI string
	authType    int
	bizAppID    string
	mobile      bool
	qr          bool
	apiURL      string
	timeout     time.Duration
}

func runAuthLink(args []string, stdout, stderr io.Writer, getenv func(string) string, d deps) int {
	fs := flag.NewFlagSet("auth-link", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o authLinkOptions
	o.kube.register(fs, false)
	fs.StringVar(&o.redirectURI, "redirect-uri", "", "where WeChat redirects the administrator after authorizing (required; http or https)")
	fs.IntVar(&o.authType, "auth-type", int(wxapi.AuthTypeBoth), "accounts the page offers: 1 official accounts, 2 mini programs, 3 both")
	fs.StringVar(&o.bizAppID, "biz-appid", "", "offer only this account (its appid)")
	fs.BoolVar(&o.mobile, "mobile", false, "also print the mobile link, to open inside WeChat")
	fs.BoolVar(&o.qr, "qr", false, "also print the mobile link as a QR code to scan with WeChat")
	fs.StringVar(&o.apiURL, "wechat-api-url", "", "WeChat API base URL (default: $WECHAT_API_URL, else "+wxapi.DefaultBaseURL+")")
	fs.DurationVar(&o.timeout, "timeout", defaultAuthLinkTimeout, "give up after this long")
	fail := commandFailer(fs.Name(), stderr)
	pos, exit, done := parseCommand(fs, authLinkUsage, args, stdout, fail)
	if done {
		return exit
	}
	if err := o.complete(pos, getenv); err != nil {
		return fail(err)
	}
	c, contextNS, err := d.connect(o.kube)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	res, err := createAuthLink(ctx, c, namespaceFor(o.kube, contextNS), o, d.now)
	if err != nil {
		return fail(err)
	}
	if err := res.print(stdout, stderr, o); err != nil {
		return fail(fmt.Errorf("writing stdout: %w", err))
	}
	return exitOK
}

// complete checks the arguments and fills in defaults.
func (o *authLinkOptions) complete(pos []string, getenv func(string) string) error {
	switch len(pos) {
	case 0:
		return usageErrorf("COMPONENT is required: the name of the WeChatComponent (see kubectl-wechat auth-link --help)")
	case 1:
		o.component = pos[0]
	default:
		return usageErrorf("unexpected argument %q: only one COMPONENT is accepted", pos[1])
	}
	if o.redirectURI == "" {
		return usageErrorf("--redirect-uri is required (see kubectl-wechat auth-link --help)")
	}
	u, err := url.Parse(o.redirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("--redirect-uri must be an absolute http or https URL")
	}
	if u.Query().Has(authstate.Param) || u.Fragment != "" {
		return usageErrorf("--redirect-uri must carry neither %s= (the command adds it) nor a #fragment", authstate.Param)
	}
	if o.authType < 1 || o.authType > 3 {
		return usageErrorf("--auth-type must be 1 (official accounts), 2 (mini programs) or 3 (both)")
	}
	if o.bizAppID != "" && !appIDPattern.MatchString(o.bizAppID) {
		return usageErrorf("--biz-appid %q is not an appid (wx followed by 16 hex digits)", o.bizAppID)
	}
	if o.timeout <= 0 {
		return usageErrorf("--timeout must be positive")
	}
	if o.apiURL == "" {
		o.apiURL = getenv("WECHAT_API_URL")
	}
	if o.apiURL == "" {
		o.apiURL = wxapi.DefaultBaseURL
	}
	if u, err := url.Parse(o.apiURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("--wechat-api-url must be an absolute http or https URL")
	}
	return nil
}

// authLinkResult is a freshly created authorization link.
type authLinkResult struct {
	link           wxapi.AuthorizationLink
	expiresIn      time.Duration
	expiresAt      time.Time
	stateExpiresAt time.Time
}

// componentTokenSecretName is where the component's token is: the name the controller
// reported, else the one the spec asks for, else the default.
func componentTokenSecretName(c *wechatv1alpha1.WeChatComponent) string {
	switch {
	case c.Status.TokenSecretName != "":
		return c.Status.TokenSecretName
	case c.Spec.TokenSecret.Name != "":
		return c.Spec.TokenSecret.Name
	}
	return c.Name + "-component-token"
}

// createAuthLink reads the component and its token and asks WeChat for a pre_auth_code.
// Its errors never carry the token or the code.
func createAuthLink(ctx context.Context, c client.Client, ns string, o authLinkOptions, now func() time.Time) (authLinkResult, error) {
	var comp wechatv1alpha1.WeChatComponent
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: o.component}, &comp); err != nil {
		return authLinkResult{}, kubeError(err, fmt.Sprintf("WeChatComponent %q in namespace %q", o.component, ns))
	}
	check := fmt.Sprintf("check `kubectl get wxc %s -n %s`", comp.Name, ns)
	secretName := componentTokenSecretName(&comp)
	var sec corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: secretName}, &sec); err != nil {
		if apierrors.IsNotFound(err) {
			return authLinkResult{}, fmt.Errorf("the component has no token yet (no Secret %q); %s", secretName, check)
		}
		return authLinkResult{}, kubeError(err, fmt.Sprintf("Secret %q in namespace %q", secretName, ns))
	}
	token := string(sec.Data[wechatv1alpha1.SecretKeyAccessToken])
	if token == "" {
		return authLinkResult{}, fmt.Errorf("the component has no token yet (Secret %q has no %s); %s", secretName, wechatv1alpha1.SecretKeyAccessToken, check)
	}
	if exp, err := time.Parse(time.RFC3339, string(sec.Data[wechatv1alpha1.SecretKeyExpiresAt])); err == nil && !now().Before(exp) {
		return authLinkResult{}, fmt.Errorf("the component's token expired %s ago and was not refreshed; %s", humanDuration(now().Sub(exp)), check)
	}
	appID := comp.Spec.AppID
	if tokenAppID := string(sec.Data[wechatv1alpha1.SecretKeyAppID]); tokenAppID != "" && tokenAppID != appID {
		return authLinkResult{}, fmt.Errorf("the token in Secret %q belongs to appid %s, not to the component's %s; wait for the operator to refresh it and %s", secretName, tokenAppID, appID, check)
	}

	// Signed before WeChat is asked, so that a missing Token spends no pre_auth_code.
	stateExpires := now().Add(authstate.DefaultLifetime).Truncate(time.Second)
	redirectURI, err := signedRedirectURI(ctx, c, &comp, o.redirectURI, stateExpires)
	if err != nil {
		return authLinkResult{}, err
	}

	wx := wxapi.New(wxapi.Options{BaseURL: o.apiURL, Timeout: o.timeout, UserAgent: "kubectl-wechat"})
	pac, err := wx.CreatePreAuthCode(ctx, token, appID)
	if err != nil {
		return authLinkResult{}, weChatError(err, check)
	}
	return authLinkResult{
		link: wxapi.AuthorizationLink{
			ComponentAppID: appID,
			PreAuthCode:    pac.Code,
			RedirectURI:    redirectURI,
			AuthType:       wxapi.AuthType(o.authType),
			BizAppID:       o.bizAppID,
		},
		expiresIn:      pac.ExpiresIn,
		expiresAt:      now().Add(pac.ExpiresIn),
		stateExpiresAt: stateExpires,
	}, nil
}

// signedRedirectURI appends the state the receiver's landing page checks (internal/authstate)
// to redirectURI, signed with the key derived from the platform's Token and EncodingAESKey. The other query
// parameters keep their order.
func signedRedirectURI(ctx context.Context, c client.Client, comp *wechatv1alpha1.WeChatComponent, redirectURI string, expires time.Time) (string, error) {
	ref := comp.Spec.CredentialsSecretRef
	tokenKey := ref.TokenKey
	if tokenKey == "" {
		tokenKey = wechatv1alpha1.DefaultTokenKey
	}
	var sec corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: comp.Namespace, Name: ref.Name}, &sec); err != nil {
		return "", kubeError(err, fmt.Sprintf("Secret %q in namespace %q (the credentials, whose Token and EncodingAESKey sign the link's state)", ref.Name, comp.Namespace))
	}
	aesKeyKey := ref.EncodingAESKeyKey
	if aesKeyKey == "" {
		aesKeyKey = wechatv1alpha1.DefaultEncodingAESKeyKey
	}
	token, aesKey := string(sec.Data[tokenKey]), string(sec.Data[aesKeyKey])
	if token == "" || aesKey == "" {
		return "", fmt.Errorf("the credentials Secret %q lacks %s or %s: the link's state is signed with the platform's Token and EncodingAESKey", ref.Name, tokenKey, aesKeyKey)
	}
	return authlink.WithState(redirectURI, authstate.Key(token, aesKey), comp.Namespace, comp.Name, expires)
}

// weChatError adds what to do to the errors a user can do something about. wxapi errors
// carry no secret.
func weChatError(err error, check string) error {
	code, _ := wxapi.Code(err)
	switch {
	case wxapi.IsInvalidToken(err):
		return fmt.Errorf("%w; WeChat rejected the component token, which the operator may be replacing right now: retry in a minute, or %s", err, check)
	case code == wxapi.CodeIPNotWhitelisted:
		return fmt.Errorf("%w; WeChat accepts this call only from the platform's IP whitelist: add this machine's public IP on the platform's settings page, or run the command from a whitelisted host", err)
	case code == wxapi.CodeInvalidAppID || code == wxapi.CodeInvalidComponent:
		return fmt.Errorf("%w; check spec.appID of the component", err)
	}
	return err
}

func (r authLinkResult) print(stdout, stderr io.Writer, o authLinkOptions) error {
	// Labels go to stderr so that stdout holds only the links (and the QR code).
	fmt.Fprintln(stderr, "PC authorization link (open it through a link on a page of the platform's authorization domain):")
	if _, err := fmt.Fprintln(stdout, r.link.PCURL()); err != nil {
		return err
	}
	if o.mobile {
		fmt.Fprintln(stderr, "Mobile authorization link (open it inside WeChat):")
		if _, err := fmt.Fprintln(stdout, r.link.MobileURL()); err != nil {
			return err
		}
	}
	if o.qr {
		fmt.Fprintln(stderr, "QR code of the mobile authorization link (scan it with WeChat):")
		if err := writeQR(stdout, r.link.MobileURL()); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "The pre_auth_code in the link is single use and expires in %s (at %s).\n",
		humanDuration(r.expiresIn), r.expiresAt.Local().Format(time.TimeOnly))
	fmt.Fprintf(stderr, "The receiver's landing page accepts the link's state until %s.\n",
		r.stateExpiresAt.Local().Format(time.TimeOnly))
	return nil
}

// qrLevel is the error correction level of the QR code: the lowest keeps it small enough
// for a terminal, and a screen is not a damaged label.
const qrLevel = qr.L

// writeQR draws text as a QR code with Unicode half blocks, two modules a line, for a
// terminal with a dark background (light modules are drawn, dark ones left blank).
func writeQR(w io.Writer, text string) error {
	// qrterminal ignores an encoding error (and would then crash): check first.
	if _, err := qr.Encode(text, qrLevel); err != nil {
		return fmt.Errorf("the link does not fit in a QR code: %w", err)
	}
	ew := &errWriter{w: w}
	qrterminal.GenerateWithConfig(text, qrterminal.Config{
		Level:          qrLevel,
		Writer:         ew,
		HalfBlocks:     true,
		BlackChar:      qrterminal.BLACK_BLACK,
		WhiteBlackChar: qrterminal.WHITE_BLACK,
		WhiteChar:      qrterminal.WHITE_WHITE,
		BlackWhiteChar: qrterminal.BLACK_WHITE,
		QuietZone:      qrterminal.QUIET_ZONE,
	})
	return ew.err
}

// errWriter remembers the first write error (qrterminal drops them).
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
