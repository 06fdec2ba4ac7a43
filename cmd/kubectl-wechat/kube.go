/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// kubeOptions are the flags that select the cluster and namespace, as kubectl spells them.
type kubeOptions struct {
	kubeconfig    string
	context       string
	namespace     string
	allNamespaces bool
}

// register adds --kubeconfig, --context, -n/--namespace and, if all, -A/--all-namespaces to fs.
func (o *kubeOptions) register(fs *flag.FlagSet, all bool) {
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
	fs.StringVar(&o.context, "context", "", "the kubeconfig context to use (default: the current context)")
	fs.StringVar(&o.namespace, "namespace", "", "the namespace (default: the context's namespace)")
	fs.StringVar(&o.namespace, "n", "", "short for --namespace")
	if all {
		fs.BoolVar(&o.allNamespaces, "all-namespaces", false, "list across all namespaces")
		fs.BoolVar(&o.allNamespaces, "A", false, "short for --all-namespaces")
	}
}

// connectFunc returns a client for the cluster the options select and the namespace of
// the selected context ("default" if it names none). Tests replace it with a fake.
type connectFunc func(kubeOptions) (client.Client, string, error)

// deps are what the plugin needs from the outside world; tests replace them.
type deps struct {
	connect connectFunc
	now     func() time.Time
}

func defaultDeps(getenv func(string) string, stderr io.Writer) deps {
	return deps{
		connect: func(o kubeOptions) (client.Client, string, error) { return connectKube(o, getenv, stderr) },
		now:     time.Now,
	}
}

// newScheme knows the two kinds of the operator and core Secrets: all the plugin reads.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := wechatv1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// loadKubeconfig resolves the kubeconfig as kubectl does: --kubeconfig, else the files
// listed in $KUBECONFIG, else ~/.kube/config (else the in-cluster config), with --context
// choosing the context. It returns the REST config and the context's namespace.
func loadKubeconfig(o kubeOptions, getenv func(string) string) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	// Read $KUBECONFIG through getenv rather than os.Getenv, so tests control it.
	// Missing files are reported by the error below, not by a klog warning.
	rules.Precedence = []string{clientcmd.RecommendedHomeFile}
	rules.WarnIfAllMissing = false
	if v := getenv(clientcmd.RecommendedConfigPathEnvVar); v != "" {
		rules.Precedence = filepath.SplitList(v)
	}
	rules.ExplicitPath = o.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.context})
	cfg, err := cc.ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, "", errors.New("loading kubeconfig: none found: use --kubeconfig, set $KUBECONFIG, or create ~/.kube/config")
	}
	if err != nil {
		return nil, "", fmt.Errorf("loading kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("loading kubeconfig: %w", err)
	}
	if ns == "" {
		ns = "default"
	}
	return cfg, ns, nil
}

// connectKube is the real connectFunc.
func connectKube(o kubeOptions, getenv func(string) string, stderr io.Writer) (client.Client, string, error) {
	cfg, ns, err := loadKubeconfig(o, getenv)
	if err != nil {
		return nil, "", err
	}
	cfg.UserAgent = "kubectl-wechat"
	// Print API deprecation warnings the way kubectl does rather than through a logger.
	cfg.WarningHandler = rest.NewWarningWriter(stderr, rest.WarningWriterOptions{})
	scheme, err := newScheme()
	if err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme, Log: logr.Discard()})
	if err != nil {
		return nil, "", fmt.Errorf("connecting to the cluster: %w", err)
	}
	return c, ns, nil
}

// namespaceFor is -n when given, else the kubeconfig context's namespace.
func namespaceFor(o kubeOptions, contextNamespace string) string {
	if o.namespace != "" {
		return o.namespace
	}
	return contextNamespace
}

// kubeError turns an API error into one line a user can act on. what names the object
// ("WeChatComponent \"c\" in namespace \"ns\"").
func kubeError(err error, what string) error {
	switch {
	case meta.IsNoMatchError(err):
		return errors.New("the wechat-operator CRDs (platform.wechat-operator.dev) are not installed in this cluster")
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s not found", what)
	}
	return fmt.Errorf("reading %s: %s", what, oneLine(err.Error()))
}

// oneLine keeps only the first line of s, so every failure is reported on one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// commandFailer prints a subcommand's error on one line and returns its exit code.
func commandFailer(name string, stderr io.Writer) func(error) int {
	return func(err error) int {
		fmt.Fprintf(stderr, "kubectl-wechat %s: %s\n", name, oneLine(err.Error()))
		return exitCodeFor(err)
	}
}

// parseCommand parses a subcommand's flags and arguments. With --help it prints usage and
// the flags; a bad flag goes to fail. done says the subcommand ends there, with exit.
func parseCommand(fs *flag.FlagSet, usage string, args []string, stdout io.Writer, fail func(error) int) (pos []string, exit int, done bool) {
	pos, err := parseInterspersed(fs, args)
	if err == nil {
		return pos, 0, false
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil, exitOK, true
	}
	return nil, fail(usageErrorf("%v (see kubectl-wechat %s --help)", err, fs.Name())), true
}

// parseInterspersed parses args with fs, allowing flags after positional arguments
// (kubectl style: "auth-link COMPONENT -n NS"). A "--" ends flag parsing.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// usageError marks errors that exit with exitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// exitCodeFor maps an error of a subcommand to the process exit code.
func exitCodeFor(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}
