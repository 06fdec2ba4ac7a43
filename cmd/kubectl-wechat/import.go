/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

const importUsage = `Usage: kubectl-wechat import FILE|- --component NAME [-n NAMESPACE] [--dry-run] [flags]

Moves accounts to the operator from another system (an SDK's Redis or database): reads
lines "appid,refresh_token" from FILE ("-" for stdin; blank lines and # comments are
skipped) and, for each account, creates in the namespace
  - Secret <authorizer>-import holding the refresh token (key refresh_token), labelled
    app.kubernetes.io/managed-by=kubectl-wechat and released to that one authorizer
    (annotation platform.wechat-operator.dev/usable-by), and
  - WeChatAuthorizer <component>-<appid> (named as spec.authorizers.autoCreate names them,
    with the component's authorizer template) whose spec.refreshTokenSecretRef names it.
The manager reads the refresh token once and keeps its own copy; no new authorization and no
api_query_auth call is needed. Stop the other system's refreshing first: two refreshers
invalidate each other's tokens. Delete the import Secrets once the authorizers are Ready:
  kubectl delete secret -n NAMESPACE -l app.kubernetes.io/managed-by=kubectl-wechat

The whole file is checked before anything is created; errors name the line, never a token.
Re-running is safe: an account that already has a WeChatAuthorizer for the component
(whatever its name) is skipped, and a Secret that import did not create is never overwritten.
Needs RBAC to get/list WeChatComponents and WeChatAuthorizers and to create them and Secrets.

Examples:
  kubectl wechat import tokens.csv --component demo-platform -n wechat --dry-run
  redis-cli --raw ... | kubectl wechat import - --component demo-platform -n wechat

Flags:
`

const defaultImportTimeout = 5 * time.Minute

func runImport(args []string, stdin io.Reader, stdout, stderr io.Writer, d deps) int {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var ko kubeOptions
	ko.register(fs, false)
	component := fs.String("component", "", "the WeChatComponent the accounts authorized (required)")
	dryRun := fs.Bool("dry-run", false, "print what would be created, create nothing")
	timeout := fs.Duration("timeout", defaultImportTimeout, "give up after this long")
	fail := func(err error) int {
		fmt.Fprintf(stderr, "kubectl-wechat import: %s\n", oneLine(err.Error()))
		return exitCodeFor(err)
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, importUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK
		}
		return fail(usageErrorf("%v (see kubectl-wechat import --help)", err))
	}
	switch {
	case len(pos) != 1:
		return fail(usageErrorf("want one argument, the file to read or - for stdin (see kubectl-wechat import --help)"))
	case *component == "":
		return fail(usageErrorf("--component is required"))
	case *timeout <= 0:
		return fail(usageErrorf("--timeout must be positive"))
	}
	in := stdin
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		in = f
	}
	lines, err := parseRefreshTokens(in)
	var le *lineErrors
	if errors.As(err, &le) {
		for _, e := range le.errs {
			fmt.Fprintf(stderr, "kubectl-wechat import: %s: %s\n", pos[0], e)
		}
		return fail(fmt.Errorf("%d invalid lines in %s: nothing imported", le.total, pos[0]))
	}
	if err != nil {
		return fail(err)
	}
	if len(lines) == 0 {
		return fail(fmt.Errorf("no accounts in %s: nothing imported", pos[0]))
	}
	c, contextNS, err := d.connect(ko)
	if err != nil {
		return fail(err)
	}
	ns := namespaceFor(ko, contextNS)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	sum, err := importAccounts(ctx, c, ns, *component, lines, *dryRun, stdout)
	if err != nil {
		return fail(err)
	}
	verb := "created"
	if *dryRun {
		verb = "would create"
	}
	fmt.Fprintf(stdout, "%s %d, skipped %d, failed %d (WeChatAuthorizers in namespace %q for component %q)\n",
		verb, sum.created, sum.skipped, sum.failed, ns, *component)
	if sum.failed > 0 {
		return exitFailure
	}
	return exitOK
}

type importSummary struct{ created, skipped, failed int }

// importSecretName is the Secret import creates for the authorizer named authorizer.
func importSecretName(authorizer string) string { return authorizer + "-import" }

// importAccounts creates a Secret and a WeChatAuthorizer per line, reporting each on out. It
// returns an error only for what stops the whole import (no component, no access).
func importAccounts(ctx context.Context, c client.Client, ns, component string, lines []refreshTokenLine, dryRun bool, out io.Writer) (importSummary, error) {
	var sum importSummary
	comp := &wechatv1alpha1.WeChatComponent{}
	what := fmt.Sprintf("WeChatComponent %q in namespace %q", component, ns)
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: component}, comp); err != nil {
		return sum, kubeError(err, what)
	}
	var existing wechatv1alpha1.WeChatAuthorizerList
	if err := c.List(ctx, &existing, client.InNamespace(ns)); err != nil {
		return sum, kubeError(err, "WeChatAuthorizers"+inNamespace(ns))
	}
	byName := map[string]*wechatv1alpha1.WeChatAuthorizer{}
	for i := range existing.Items {
		byName[existing.Items[i].Name] = &existing.Items[i]
	}
	for _, l := range lines {
		if a := wechatv1alpha1.PickAuthorizer(existing.Items, component, l.appID); a != nil {
			sum.skipped++
			fmt.Fprintf(out, "skipped %s: WeChatAuthorizer %s exists\n", l.appID, a.Name)
			continue
		}
		a := wechatv1alpha1.NewAutoCreatedAuthorizer(comp, l.appID)
		if other := byName[a.Name]; other != nil {
			sum.failed++
			fmt.Fprintf(out, "failed %s: the name %s is taken by a WeChatAuthorizer for %s of component %s\n",
				l.appID, a.Name, other.Spec.AppID, other.Spec.ComponentRef.Name)
			continue
		}
		secret := importSecretName(a.Name)
		a.Spec.RefreshTokenSecretRef = &wechatv1alpha1.SecretKeyReference{Name: secret}
		if dryRun {
			sum.created++
			fmt.Fprintf(out, "would create WeChatAuthorizer %s (%s) and Secret %s\n", a.Name, l.appID, secret)
			continue
		}
		if err := putImportSecret(ctx, c, ns, secret, a.Name, component, l.refreshToken); err != nil {
			sum.failed++
			fmt.Fprintf(out, "failed %s: %s\n", l.appID, oneLine(err.Error()))
			continue
		}
		// The Secret first: the manager then finds it at the authorizer's first reconcile.
		switch err := c.Create(ctx, a); {
		case apierrors.IsAlreadyExists(err):
			sum.skipped++
			fmt.Fprintf(out, "skipped %s: WeChatAuthorizer %s was created meanwhile\n", l.appID, a.Name)
		case err != nil:
			sum.failed++
			fmt.Fprintf(out, "failed %s: creating WeChatAuthorizer %s: %s\n", l.appID, a.Name, oneLine(err.Error()))
		default:
			sum.created++
			fmt.Fprintf(out, "created WeChatAuthorizer %s (%s) and Secret %s\n", a.Name, l.appID, secret)
		}
	}
	return sum, nil
}

// putImportSecret creates Secret name holding token for authorizer, or updates it if an
// earlier import created it. Labels and annotations others put on it are kept.
func putImportSecret(ctx context.Context, c client.Client, ns, name, authorizer, component, token string) error {
	usableBy := wechatv1alpha1.KindWeChatAuthorizer + "/" + authorizer
	secret := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secret)
	if apierrors.IsNotFound(err) {
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ns, Name: name,
				Labels: map[string]string{
					wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByPluginValue,
					wechatv1alpha1.LabelComponent: component,
				},
				Annotations: map[string]string{wechatv1alpha1.AnnotationUsableBy: usableBy},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{wechatv1alpha1.DefaultRefreshTokenKey: []byte(token)},
		}
		if err := c.Create(ctx, secret); err != nil {
			return fmt.Errorf("creating Secret %s: %s", name, oneLine(err.Error()))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Secret %s: %s", name, oneLine(err.Error()))
	}
	if secret.Labels[wechatv1alpha1.LabelManagedBy] != wechatv1alpha1.ManagedByPluginValue {
		return fmt.Errorf("Secret %s exists and was not created by kubectl wechat import: left alone; delete or rename it", name)
	}
	// A re-run after an import that stopped between the Secret and the authorizer.
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Data[wechatv1alpha1.DefaultRefreshTokenKey] = []byte(token)
	secret.Annotations[wechatv1alpha1.AnnotationUsableBy] = usableBy
	if err := c.Update(ctx, secret); err != nil {
		return fmt.Errorf("updating Secret %s: %s", name, oneLine(err.Error()))
	}
	return nil
}
