/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Command kubectl-wechat is the wechat-operator kubectl plugin ("kubectl wechat ...").
//
//	kubectl-wechat auth-link COMPONENT [-n NS] --redirect-uri URL [--auth-type 1|2|3] [--biz-appid ID] [--mobile] [--qr]
//	kubectl-wechat status [-n NS | -A]
//	kubectl-wechat decrypt --token T --encoding-aes-key K --app-id A \
//	    --timestamp TS --nonce N --msg-signature S < envelope.xml
//	kubectl-wechat import FILE|- --component NAME [-n NS] [--dry-run]
//	kubectl-wechat export [-n NS] [--component NAME] [-o FILE [--force]]
//	kubectl-wechat completion bash|zsh
//
// decrypt reads a captured push envelope (the HTTP body WeChat POSTed) on stdin, verifies
// msg_signature and decrypts it, and prints the decrypted message XML on stdout (exit 0).
// On any failure it prints one line on stderr, nothing on stdout, and exits non-zero:
// 1 when the envelope does not verify or decrypt, 2 for usage errors.
//
// --token and --encoding-aes-key may instead come from the environment variables
// WECHAT_TOKEN and WECHAT_ENCODING_AES_KEY, which keeps them out of shell history and ps.
//
// auth-link creates a pre_auth_code with the component's token (read from its token Secret
// through the user's kubeconfig) and prints the authorization link, optionally as a QR code;
// its redirect_uri carries a state signed with a key derived from the platform's Token and
// EncodingAESKey (read from the credentials Secret), without which the receiver's landing page records nothing.
// status lists components and authorizers with readiness, expiry and last error; it reads
// no Secret. import creates WeChatAuthorizers (and Secrets with their refresh tokens) from
// "appid,refresh_token" lines; export writes such lines from the operator's state Secrets.
// All exit 1 on failure and 2 on usage errors, with one line on stderr.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2

	// maxEnvelope caps stdin; real envelopes are a few KiB.
	maxEnvelope = 1 << 20
)

const usage = `kubectl-wechat: the wechat-operator kubectl plugin.

Usage:
  kubectl-wechat auth-link COMPONENT [-n NS] --redirect-uri URL [--auth-type 1|2|3] [--biz-appid ID] [--mobile] [--qr]
  kubectl-wechat status [-n NS | -A]
  kubectl-wechat import FILE|- --component NAME [-n NS] [--dry-run]
  kubectl-wechat export [-n NS] [--component NAME] [-o FILE [--force]]
  kubectl-wechat decrypt --token T --encoding-aes-key K --app-id A --timestamp TS --nonce N --msg-signature S < envelope.xml

Commands:
  auth-link  print a link (or QR code) an account administrator opens to authorize a component
  status     show components and authorizers: readiness, token expiry, last error
  import     create WeChatAuthorizers from "appid,refresh_token" lines (moving from an SDK)
  export     write "appid,refresh_token" lines from the operator's state (a backup; sensitive)
  decrypt    verify and decrypt a captured push envelope read from stdin
  completion print a shell completion script: kubectl-wechat completion bash|zsh
  help       show this help

Run "kubectl-wechat COMMAND --help" for the flags of a command.
`

const decryptUsage = `Usage: kubectl-wechat decrypt [flags] < envelope.xml

Verifies msg_signature over the envelope's Encrypt, decrypts it and prints the message XML.
Prints nothing on stdout and exits non-zero (1) if anything does not verify; usage errors exit 2.

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// run executes the plugin and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	return runWith(args, stdin, stdout, stderr, getenv, defaultDeps(getenv, stderr))
}

// runWith is run with the cluster connection and the clock given, for tests.
func runWith(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string, d deps) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "auth-link":
		return runAuthLink(args[1:], stdout, stderr, getenv, d)
	case "status":
		return runStatus(args[1:], stdout, stderr, d)
	case "import":
		return runImport(args[1:], stdin, stdout, stderr, d)
	case "export":
		return runExport(args[1:], stdout, stderr, d)
	case "decrypt":
		return runDecrypt(args[1:], stdin, stdout, stderr, getenv)
	case "completion":
		return runCompletion(args[1:], stdout, stderr)
	case "__complete":
		return runComplete(args[1:], stdout, getenv)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "kubectl-wechat: unknown command %q (try: kubectl-wechat help)\n", args[0])
		return exitUsage
	}
}

func runDecrypt(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("decrypt", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	token := fs.String("token", "", "the component's message token (or $WECHAT_TOKEN)")
	key := fs.String("encoding-aes-key", "", "the component's 43-character EncodingAESKey (or $WECHAT_ENCODING_AES_KEY)")
	appID := fs.String("app-id", "", "the component appid the plaintext must carry")
	timestamp := fs.String("timestamp", "", "the timestamp query parameter of the push")
	nonce := fs.String("nonce", "", "the nonce query parameter of the push")
	signature := fs.String("msg-signature", "", "the msg_signature query parameter of the push")
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "kubectl-wechat decrypt: "+format+"\n", a...)
		return code
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, decryptUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK
		}
		return fail(exitUsage, "%v (see kubectl-wechat decrypt --help)", err)
	}
	if fs.NArg() > 0 {
		return fail(exitUsage, "unexpected argument %q: the envelope is read from stdin", fs.Arg(0))
	}
	if *token == "" {
		*token = getenv("WECHAT_TOKEN")
	}
	if *key == "" {
		*key = getenv("WECHAT_ENCODING_AES_KEY")
	}
	for _, req := range []struct{ name, val string }{
		{"--token", *token}, {"--encoding-aes-key", *key}, {"--app-id", *appID},
		{"--timestamp", *timestamp}, {"--nonce", *nonce}, {"--msg-signature", *signature},
	} {
		if req.val == "" {
			return fail(exitUsage, "%s is required (see kubectl-wechat decrypt --help)", req.name)
		}
	}
	c, err := wxcrypto.NewCrypter(*token, *key, *appID)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	body, err := io.ReadAll(io.LimitReader(stdin, maxEnvelope+1))
	if err != nil {
		return fail(exitFailure, "reading stdin: %v", err)
	}
	if len(body) > maxEnvelope {
		return fail(exitFailure, "envelope on stdin is larger than %d bytes", maxEnvelope)
	}
	// Captured bodies often end with a newline from the tool that saved them; the scanner
	// accepts trailing whitespace, so the body is passed through unchanged.
	msg, err := c.Open(body, *timestamp, *nonce, *signature)
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	if !bytes.HasSuffix(msg, []byte("\n")) {
		msg = append(msg, '\n')
	}
	if _, err := stdout.Write(msg); err != nil {
		return fail(exitFailure, "writing stdout: %v", err)
	}
	return exitOK
}
