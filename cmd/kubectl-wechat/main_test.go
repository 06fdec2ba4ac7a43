/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/wechat-operator/wechat-operator/internal/wxcrypto"
)

// The published easywechat vector: a captured official-account push.
const (
	vecToken     = "pamtest"
	vecKey       = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	vecAppID     = "wxb11529c136998cb6"
	vecTimestamp = "1458300676"
	vecNonce     = "260774613"
	vecSignature = "4f3ad57b6989f09f4eb392acce4f9e93942ed890"
	vecEncrypt   = "rTNFcsut4LfGuAFKEUVVpwcaCOTJzOd9twZdIW910jb3k+iicx2uvhttIZ3Qg9Qgty3BEF2xbOrz6boTfb30dMomcgrkTqdFPwnhqbk+kIQ7rZiwny9D7NUrTgA5kpX3KsZvrXzUZyP2x9YOlxbgm572lmxKvM7HAQQhIQ/p6HBmoY30bGXFK0BtIu1pW9TjhOYrLQoU18nWYjWqDA1ynkmOytpv7QRI1P1+0NoxL0q2zO1DgeSvnE8CZGo/o5Ap/WHK5W2RAsinpzN4/LjPnmB6U01I5XCoJoC0GK/yMZycd2Oh8Nq6+wBkC1U85oy0ktOY4nLvsQMLrourmMGdZHuTbqpeJ8Ao/5PRYJ+WBvRUwPfGKBL2+2IKZF49vAJqkcGWSHGE76ZN2erXeuNazf/o9o3lIE3q739o4c8t9QGPe31GT2Go/rOz1BsrASwvauNulCh+++yz+CQzBIuikA=="
	vecMessage   = "<xml><URL><![CDATA[http://wechat.laravel.so/server]]></URL><ToUserName><![CDATA[asdasdasd]]></ToUserName><FromUserName><![CDATA[asdasdasdsadasd]]></FromUserName><CreateTime>1234567898</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>12345</MsgId></xml>"
)

var vecBody = "<xml>\n  <ToUserName><![CDATA[asdasdasd]]></ToUserName>\n  <Encrypt><![CDATA[" + vecEncrypt + "]]></Encrypt>\n</xml>\n"

func flags(over map[string]string) []string {
	vals := map[string]string{
		"--token": vecToken, "--encoding-aes-key": vecKey, "--app-id": vecAppID,
		"--timestamp": vecTimestamp, "--nonce": vecNonce, "--msg-signature": vecSignature,
	}
	for k, v := range over {
		vals[k] = v
	}
	args := []string{"decrypt"}
	for _, k := range []string{"--token", "--encoding-aes-key", "--app-id", "--timestamp", "--nonce", "--msg-signature"} {
		if v, ok := vals[k]; ok && v != "-" {
			args = append(args, k, v)
		}
	}
	return args
}

func noEnv(string) string { return "" }

func TestDecrypt(t *testing.T) {
	c, err := wxcrypto.NewCrypter("componenttoken", vecKey, "wx3f8d3c2f4c2e6a1b")
	if err != nil {
		t.Fatal(err)
	}
	ticket := wxcrypto.TicketPush{AppID: "wx3f8d3c2f4c2e6a1b", Created: 1700000000, Ticket: "ticket@@@secret"}.XML()
	ticketBody, ticketSig, err := c.SealPush(ticket, "1700000000", "77")
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name     string
		args     []string
		stdin    string
		env      map[string]string
		code     int
		stdout   string // exact, on success
		errMatch string // substring of the one stderr line, on failure
	}{
		{name: "published vector", args: flags(nil), stdin: vecBody, code: 0, stdout: vecMessage + "\n"},
		{name: "single-dash flags", args: []string{"decrypt", "-token", vecToken, "-encoding-aes-key", vecKey, "-app-id", vecAppID, "-timestamp", vecTimestamp, "-nonce", vecNonce, "-msg-signature", vecSignature}, stdin: vecBody, code: 0, stdout: vecMessage + "\n"},
		{name: "secrets from environment", args: flags(map[string]string{"--token": "-", "--encoding-aes-key": "-"}), stdin: vecBody,
			env: map[string]string{"WECHAT_TOKEN": vecToken, "WECHAT_ENCODING_AES_KEY": vecKey}, code: 0, stdout: vecMessage + "\n"},
		{name: "component ticket push", args: []string{"decrypt", "--token", "componenttoken", "--encoding-aes-key", vecKey, "--app-id", "wx3f8d3c2f4c2e6a1b", "--timestamp", "1700000000", "--nonce", "77", "--msg-signature", ticketSig},
			stdin: string(ticketBody), code: 0, stdout: string(ticket) + "\n"},

		{name: "wrong signature", args: flags(map[string]string{"--msg-signature": strings.Repeat("0", 40)}), stdin: vecBody, code: 1, errMatch: "bad msg_signature"},
		{name: "wrong timestamp", args: flags(map[string]string{"--timestamp": "1458300677"}), stdin: vecBody, code: 1, errMatch: "bad msg_signature"},
		{name: "wrong token", args: flags(map[string]string{"--token": "othertoken"}), stdin: vecBody, code: 1, errMatch: "bad msg_signature"},
		{name: "wrong appid", args: flags(map[string]string{"--app-id": "wx0000000000000000"}), stdin: vecBody, code: 1, errMatch: "appid mismatch"},
		{name: "wrong key", args: flags(map[string]string{"--encoding-aes-key": "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"}), stdin: vecBody, code: 1, errMatch: "wxcrypto"},
		{name: "tampered ciphertext", args: flags(nil), stdin: strings.Replace(vecBody, "rTNF", "rTNG", 1), code: 1, errMatch: "bad msg_signature"},
		{name: "not an envelope", args: flags(nil), stdin: "hello", code: 1, errMatch: "malformed"},
		{name: "empty stdin", args: flags(nil), stdin: "", code: 1, errMatch: "malformed"},
		{name: "too large", args: flags(nil), stdin: vecBody + strings.Repeat(" ", maxEnvelope), code: 1, errMatch: "larger than"},

		{name: "missing signature", args: flags(map[string]string{"--msg-signature": "-"}), stdin: vecBody, code: 2, errMatch: "--msg-signature is required"},
		{name: "missing token", args: flags(map[string]string{"--token": "-"}), stdin: vecBody, code: 2, errMatch: "--token is required"},
		{name: "bad key format", args: flags(map[string]string{"--encoding-aes-key": "short"}), stdin: vecBody, code: 2, errMatch: "bad key"},
		{name: "unknown flag", args: append(flags(nil), "--verbose"), stdin: vecBody, code: 2, errMatch: "not defined"},
		{name: "stray argument", args: append(flags(nil), "envelope.xml"), stdin: vecBody, code: 2, errMatch: "unexpected argument"},
		{name: "unknown command", args: []string{"encrypt"}, code: 2, errMatch: "unknown command"},
		{name: "no command", args: nil, code: 2, errMatch: "Usage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			getenv := noEnv
			if tc.env != nil {
				getenv = func(k string) string { return tc.env[k] }
			}
			code := run(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr, getenv)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, stderr.String())
			}
			if tc.code == 0 {
				if stdout.String() != tc.stdout || stderr.Len() != 0 {
					t.Fatalf("stdout %q, stderr %q", stdout.String(), stderr.String())
				}
				return
			}
			if stdout.Len() != 0 {
				t.Fatalf("stdout not empty on failure: %q", stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.errMatch) {
				t.Fatalf("stderr %q does not mention %q", stderr.String(), tc.errMatch)
			}
			if tc.args != nil && strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("stderr is not one line: %q", stderr.String())
			}
			for _, secret := range []string{vecToken, vecKey, "hello", "ticket@@@secret"} {
				if strings.Contains(stderr.String(), secret) {
					t.Fatalf("stderr leaks %q: %q", secret, stderr.String())
				}
			}
		})
	}
}

func TestDecryptStdinError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(flags(nil), iotest.ErrReader(errors.New("boom")), &stdout, &stderr, noEnv)
	if code != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "reading stdin") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"decrypt", "--help"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, strings.NewReader(""), &stdout, &stderr, noEnv); code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		if !strings.Contains(stdout.String(), "kubectl-wechat decrypt") || stderr.Len() != 0 {
			t.Fatalf("%v: stdout %q, stderr %q", args, stdout.String(), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	run([]string{"decrypt", "--help"}, strings.NewReader(""), &stdout, &stderr, noEnv)
	if !strings.Contains(stdout.String(), "-msg-signature") {
		t.Fatalf("decrypt help lists no flags: %q", stdout.String())
	}
}

// TestProcess runs the real main (this test binary re-executed) to check the exit status and
// the streams as a shell sees them.
func TestProcess(t *testing.T) {
	if os.Getenv("KUBECTL_WECHAT_RUN_MAIN") == "1" {
		os.Args = append([]string{"kubectl-wechat"}, strings.Fields(os.Getenv("KUBECTL_WECHAT_ARGS"))...)
		main()
		return
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
	}{
		{"ok", flags(nil), 0, vecMessage + "\n"},
		{"bad signature", flags(map[string]string{"--msg-signature": strings.Repeat("a", 40)}), 1, ""},
		{"usage", []string{"decrypt"}, 2, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestProcess$")
			cmd.Env = append(os.Environ(), "KUBECTL_WECHAT_RUN_MAIN=1", "KUBECTL_WECHAT_ARGS="+strings.Join(tc.args, " "))
			cmd.Stdin = strings.NewReader(vecBody)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || stdout.String() != tc.stdout {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, tc.code, stdout.String(), stderr.String())
			}
			if tc.code != 0 && strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("stderr is not one line: %q", stderr.String())
			}
		})
	}
}
