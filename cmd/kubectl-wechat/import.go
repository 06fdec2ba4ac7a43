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

	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refreshtokens"
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
	fail := commandFailer(fs.Name(), stderr)
	pos, exit, done := parseCommand(fs, importUsage, args, stdout, fail)
	if done {
		return exit
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
	lines, err := refreshtokens.Parse(in)
	var le *refreshtokens.LineErrors
	if errors.As(err, &le) {
		for _, e := range le.Lines {
			fmt.Fprintf(stderr, "kubectl-wechat import: %s: %s\n", pos[0], e)
		}
		return fail(fmt.Errorf("%d invalid lines in %s: nothing imported", le.Total, pos[0]))
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
	comp := &wechatv1alpha1.WeChatComponent{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: *component}, comp); err != nil {
		return fail(kubeError(err, fmt.Sprintf("WeChatComponent %q in namespace %q", *component, ns)))
	}
	sum, err := refreshtokens.Import(ctx, c, comp, lines, *dryRun, stdout)
	if err != nil {
		return fail(apiError(err))
	}
	verb := "created"
	if *dryRun {
		verb = "would create"
	}
	fmt.Fprintf(stdout, "%s %d, skipped %d, failed %d (WeChatAuthorizers in namespace %q for component %q)\n",
		verb, sum.Created, sum.Skipped, sum.Failed, ns, *component)
	if sum.Failed > 0 {
		return exitFailure
	}
	return exitOK
}

// apiError words a failed read of the whole import or export as kubeError does.
func apiError(err error) error {
	var ae *refreshtokens.APIError
	if errors.As(err, &ae) {
		return kubeError(ae.Err, ae.What)
	}
	return err
}
