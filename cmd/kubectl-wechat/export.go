/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/wechat-operator/wechat-operator/internal/refreshtokens"
)

const exportUsage = `Usage: kubectl-wechat export [-n NAMESPACE] [--component NAME] [-o FILE [--force]] [flags]

Writes "appid,refresh_token" lines for the WeChatAuthorizers of a namespace (of one component
with --component), read from the operator's private state Secrets (<authorizer>-state): a
backup, or the input of "kubectl wechat import" in another cluster or namespace.

The output is as sensitive as the refresh tokens themselves: whoever holds it can mint
access tokens for every account in it. Store it encrypted, and write it with -o (created
with mode 0600) rather than through a terminal or a shell pipe to a file.
Needs RBAC to list WeChatAuthorizers and to get Secrets in the namespace, which the
operator's own users normally do not have.

An authorizer without a refresh token yet (never authorized, or its state Secret missing)
is reported on stderr and skipped. Without --component, an account authorized to two
components is refused: export them one component at a time.

Examples:
  kubectl wechat export -n wechat --component demo-platform -o tokens.csv

Flags:
`

const defaultExportTimeout = 5 * time.Minute

func runExport(args []string, stdout, stderr io.Writer, d deps) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var ko kubeOptions
	ko.register(fs, false)
	component := fs.String("component", "", "only the authorizers of this WeChatComponent")
	output := fs.String("o", "", "write to this file (mode 0600) instead of stdout")
	force := fs.Bool("force", false, "overwrite the -o file if it exists")
	timeout := fs.Duration("timeout", defaultExportTimeout, "give up after this long")
	fail := commandFailer(fs.Name(), stderr)
	pos, exit, done := parseCommand(fs, exportUsage, args, stdout, fail)
	if done {
		return exit
	}
	switch {
	case len(pos) > 0:
		return fail(usageErrorf("unexpected argument %q (see kubectl-wechat export --help)", pos[0]))
	case *force && *output == "":
		return fail(usageErrorf("--force needs -o"))
	case *timeout <= 0:
		return fail(usageErrorf("--timeout must be positive"))
	}
	// Refuse before reading any token, so nothing is read for nothing.
	if *output != "" && !*force {
		if _, err := os.Lstat(*output); err == nil {
			return fail(fmt.Errorf("%s exists: use --force to overwrite it", *output))
		}
	}
	c, contextNS, err := d.connect(ko)
	if err != nil {
		return fail(err)
	}
	ns := namespaceFor(ko, contextNS)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	lines, err := refreshtokens.Export(ctx, c, ns, *component, stderr)
	if err != nil {
		return fail(apiError(err))
	}
	var buf bytes.Buffer
	comment := fmt.Sprintf("kubectl wechat export: namespace %s, %d accounts, %s\nappid,refresh_token: as sensitive as the tokens",
		ns, len(lines), d.now().UTC().Format(time.RFC3339))
	if err := refreshtokens.Format(&buf, comment, lines); err != nil {
		return fail(err)
	}
	if *output == "" {
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			return fail(fmt.Errorf("writing stdout: %w", err))
		}
	} else if err := writePrivateFile(*output, buf.Bytes(), *force); err != nil {
		return fail(err)
	}
	if *output != "" {
		fmt.Fprintf(stderr, "exported %d accounts to %s\n", len(lines), *output)
	}
	return exitOK
}

// writePrivateFile writes data to path with mode 0600: a new file, or with force an existing
// one, whose mode is then narrowed too.
func writePrivateFile(path string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: use --force to overwrite it", path)
	}
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
