/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Shell completion. `kubectl-wechat __complete ARGS... WORD` prints the candidates for WORD
// (the word being completed, possibly empty) after ARGS, one per line as "candidate<TAB>help",
// and last a line ":N" with N a bit set of directives: the protocol of spf13/cobra, which
// kubectl (1.26+) speaks with a plugin's kubectl_complete-<plugin> executable
// (plugins/kubectl_complete-wechat runs this), and which the scripts of
// `kubectl-wechat completion bash|zsh` read for the plugin run on its own.
//
// The flags offered are read from each command's own --help (its flag.FlagSet), so they
// cannot drift from the flags the commands take.

// Completion directives (cobra's ShellCompDirective values).
const (
	compDirectiveDefault    = 0 // the shell may fall back to file names
	compDirectiveNoFileComp = 4 // no file names
)

// commands are the commands offered, in the order of the usage text.
var commands = []struct{ name, help string }{
	{"auth-link", "print a link (or QR code) to authorize a component"},
	{"status", "show components and authorizers"},
	{"import", "create authorizers from appid,refresh_token lines"},
	{"export", "write appid,refresh_token lines (sensitive)"},
	{"decrypt", "verify and decrypt a captured push envelope"},
	{"completion", "print a shell completion script (bash, zsh)"},
	{"help", "show the help"},
}

const completionUsage = `Usage: kubectl-wechat completion bash|zsh

Prints a completion script for kubectl-wechat run on its own, e.g.
  source <(kubectl-wechat completion bash)          # bash, or in ~/.bashrc
  kubectl-wechat completion zsh > "${fpath[1]}/_kubectl-wechat"   # zsh
For "kubectl wechat ..." kubectl completes through the executable kubectl_complete-wechat
on PATH (plugins/kubectl_complete-wechat, which krew installs with the plugin).
`

func runCompletion(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Fprint(stdout, completionUsage)
		return exitOK
	}
	if len(args) != 1 {
		fmt.Fprint(stderr, "kubectl-wechat completion: want one argument, bash or zsh (see kubectl-wechat completion --help)\n")
		return exitUsage
	}
	switch args[0] {
	case "bash":
		fmt.Fprint(stdout, bashCompletion)
	case "zsh":
		fmt.Fprint(stdout, zshCompletion)
	default:
		fmt.Fprintf(stderr, "kubectl-wechat completion: unknown shell %q: bash or zsh\n", args[0])
		return exitUsage
	}
	return exitOK
}

// compFlag is a flag as a command's --help lists it.
type compFlag struct {
	name, help string
	takesValue bool
}

// flagsOf runs cmd --help and reads the flags flag.PrintDefaults lists:
//
//	-name type
//	    	usage
func flagsOf(cmd string, getenv func(string) string) []compFlag {
	var out bytes.Buffer
	runWith([]string{cmd, "--help"}, strings.NewReader(""), &out, io.Discard, getenv, deps{})
	var flags []compFlag
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "  -") {
			f := strings.Fields(line)
			flags = append(flags, compFlag{name: strings.TrimPrefix(f[0], "-"), takesValue: len(f) > 1})
			continue
		}
		if n := len(flags); n > 0 && strings.HasPrefix(line, "    \t") && flags[n-1].help == "" {
			flags[n-1].help = strings.TrimSpace(line)
		}
	}
	return flags
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// complete returns the candidates for the last of args and the directive.
func complete(args []string, getenv func(string) string) ([]string, int) {
	if len(args) == 0 {
		args = []string{""}
	}
	word := args[len(args)-1]
	var cands []string
	add := func(c, help string) {
		if strings.HasPrefix(c, word) {
			if help != "" {
				c += "\t" + help
			}
			cands = append(cands, c)
		}
	}
	if len(args) == 1 {
		for _, c := range commands {
			add(c.name, c.help)
		}
		return cands, compDirectiveNoFileComp
	}
	cmd := args[0]
	switch cmd {
	case "completion":
		if len(args) == 2 {
			add("bash", "")
			add("zsh", "")
		}
		return cands, compDirectiveNoFileComp
	case "help":
		return nil, compDirectiveNoFileComp
	}
	if !slices.ContainsFunc(commands, func(c struct{ name, help string }) bool { return c.name == cmd }) {
		return nil, compDirectiveNoFileComp
	}
	flags := flagsOf(cmd, getenv)
	// The value of the flag before the word?
	if prev := args[len(args)-2]; strings.HasPrefix(prev, "-") && !strings.Contains(prev, "=") {
		name := strings.TrimLeft(prev, "-")
		for _, f := range flags {
			if f.name == name && f.takesValue {
				switch name {
				case "kubeconfig", "o": // export -o FILE
					return nil, compDirectiveDefault
				case "auth-type":
					add("1", "official accounts")
					add("2", "mini programs")
					add("3", "both")
				}
				return cands, compDirectiveNoFileComp
			}
		}
	}
	if strings.HasPrefix(word, "-") {
		for _, f := range flags {
			add(dashed(f.name), f.help)
		}
	} else if cmd == "import" { // import FILE
		return nil, compDirectiveDefault
	}
	return cands, compDirectiveNoFileComp
}

func runComplete(args []string, stdout io.Writer, getenv func(string) string) int {
	cands, directive := complete(args, getenv)
	for _, c := range cands {
		fmt.Fprintln(stdout, c)
	}
	fmt.Fprintf(stdout, ":%d\n", directive)
	return exitOK
}

// bashCompletion asks kubectl-wechat __complete and drops the help after the tab.
const bashCompletion = `# bash completion for kubectl-wechat (kubectl-wechat completion bash)
_kubectl_wechat() {
    local cur="${COMP_WORDS[COMP_CWORD]}" out directive
    out=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return
    directive=${out##*:}
    out=${out%:*}
    COMPREPLY=()
    local line
    while IFS= read -r line; do
        [ -n "${line}" ] && COMPREPLY+=("${line%%$'\t'*}")
    done <<< "${out}"
    if [ ${#COMPREPLY[@]} -eq 0 ] && [ $(( directive & 4 )) -eq 0 ]; then
        COMPREPLY=($(compgen -f -- "${cur}"))
    fi
}
complete -o default -F _kubectl_wechat kubectl-wechat
`

// zshCompletion shows each candidate with its help.
const zshCompletion = `#compdef kubectl-wechat
# zsh completion for kubectl-wechat (kubectl-wechat completion zsh)
_kubectl_wechat() {
    local out directive
    local -a lines cands
    out=$("${words[1]}" __complete "${(@)words[2,CURRENT]}" 2>/dev/null) || return
    lines=("${(@f)out}")
    directive=${lines[-1]#:}
    for line in "${(@)lines[1,-2]}"; do
        if [[ ${line} == *$'\t'* ]]; then
            cands+=("${line%%$'\t'*}:${line#*$'\t'}")
        else
            cands+=("${line}")
        fi
    done
    if (( ${#cands} )); then
        _describe 'kubectl-wechat' cands
    elif (( (directive & 4) == 0 )); then
        _files
    fi
}
compdef _kubectl_wechat kubectl-wechat
`
