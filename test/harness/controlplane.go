/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/test/kustomize"
)

// Names config/default gives the operator; the processes authenticate as these ServiceAccounts.
const (
	OperatorNamespace = "wechat-operator-system"
	ManagerSA         = "wechat-operator-manager"
	ReceiverSA        = "wechat-operator-webhook-receiver"
)

// NewScheme returns a scheme with the built-in kinds and the operator's custom resources.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := wechatv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// ServiceAccountUser is the user a ServiceAccount's token authenticates as. A client
// certificate with the same name and groups gets exactly the permissions RBAC grants the
// ServiceAccount in a cluster.
func ServiceAccountUser(namespace, name string) envtest.User {
	return envtest.User{
		Name:   "system:serviceaccount:" + namespace + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
}

// WriteKubeconfig provisions user on env's API server and writes a kubeconfig for it to path.
func WriteKubeconfig(env *envtest.Environment, user envtest.User, path string) (*rest.Config, error) {
	u, err := env.AddUser(user, nil)
	if err != nil {
		return nil, fmt.Errorf("adding user %s: %w", user.Name, err)
	}
	data, err := u.KubeConfig()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	return u.Config(), nil
}

// ApplyRBAC server-side applies the namespaces, ServiceAccounts and RBAC of
// root/config/default, as `make deploy` would, and returns how many objects it applied.
func ApplyRBAC(ctx context.Context, c client.Client, root, operatorNamespace, fieldOwner string) (int, error) {
	objs, err := kustomize.Render(filepath.Join(root, "config", "default"))
	if err != nil {
		return 0, err
	}
	rbac := kustomize.OfKind(objs, kustomize.RBACKinds...)
	for _, obj := range rbac {
		if ns := obj.GetNamespace(); ns != "" && ns != operatorNamespace {
			return 0, fmt.Errorf("config/default puts %s %s in namespace %s, expected %s", obj.GetKind(), obj.GetName(), ns, operatorNamespace)
		}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
			return 0, fmt.Errorf("applying %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	return len(rbac), nil
}

// ControlPlaneOptions configure StartControlPlane.
type ControlPlaneOptions struct {
	// Root is the repository's root directory (config/ is read from it).
	Root string
	// Dir holds the control plane's data, certificates, logs and the kubeconfigs.
	Dir string
	// APIServerArgs are extra kube-apiserver flags, e.g. "max-requests-inflight": "800".
	APIServerArgs map[string]string
	// DieWithCaller starts etcd and kube-apiserver through trampolines (MakeTrampolines in
	// Dir/trampolines), so that the kernel kills them if the calling program dies without stopping
	// them. The program must call Trampoline first thing in main; a test binary cannot.
	DieWithCaller bool
}

// ControlPlane is etcd + kube-apiserver with the CRDs installed and the operator's RBAC
// applied, and a kubeconfig per identity.
type ControlPlane struct {
	Env    *envtest.Environment
	Scheme *runtime.Scheme
	// Admin is a system:masters config with client-side rate limits lifted; Client uses it.
	Admin  *rest.Config
	Client client.Client
	// Kubeconfig files: the admin's, the manager's and the receiver's ServiceAccounts.
	AdminKubeconfig, ManagerKubeconfig, ReceiverKubeconfig string
	LogDir                                                 string
}

// StartControlPlane starts etcd and kube-apiserver from $KUBEBUILDER_ASSETS with the
// CRDs of config/crd/bases and the RBAC of config/default.
func StartControlPlane(ctx context.Context, o ControlPlaneOptions) (*ControlPlane, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, fmt.Errorf("KUBEBUILDER_ASSETS is not set: run `make envtest` and point it at bin/k8s/<version>")
	}
	cp := &ControlPlane{Scheme: NewScheme(), LogDir: filepath.Join(o.Dir, "logs")}
	for _, sub := range []string{"etcd", "apiserver", "logs"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	etcdLog, err := os.Create(filepath.Join(cp.LogDir, "etcd.log"))
	if err != nil {
		return nil, err
	}
	apiLog, err := os.Create(filepath.Join(cp.LogDir, "kube-apiserver.log"))
	if err != nil {
		return nil, err
	}
	cp.Env = &envtest.Environment{
		CRDDirectoryPaths:        []string{filepath.Join(o.Root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	cp.Env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(o.Dir, "etcd"), Out: etcdLog, Err: etcdLog}
	api := cp.Env.ControlPlane.GetAPIServer()
	if o.DieWithCaller {
		paths, err := MakeTrampolines(filepath.Join(o.Dir, "trampolines"), os.Getenv("KUBEBUILDER_ASSETS"))
		if err != nil {
			return nil, err
		}
		cp.Env.ControlPlane.Etcd.Path, api.Path = paths["etcd"], paths["kube-apiserver"]
	}
	// A fixed certificate directory keeps the serving and client CAs across RestartAPIServer.
	api.CertDir = filepath.Join(o.Dir, "apiserver")
	api.Out, api.Err = apiLog, apiLog
	for k, v := range o.APIServerArgs {
		api.Configure().Set(k, v)
	}
	if _, err := cp.Env.Start(); err != nil {
		return nil, fmt.Errorf("starting the control plane: %w (logs in %s)", err, cp.LogDir)
	}
	admin, err := WriteKubeconfig(cp.Env, envtest.User{Name: "harness-admin", Groups: []string{"system:masters"}}, filepath.Join(o.Dir, "kubeconfig"))
	if err != nil {
		return nil, cp.stopAfter(err)
	}
	admin.QPS, admin.Burst = -1, 0 // the harness measures the system, not client-go's limiter
	cp.Admin, cp.AdminKubeconfig = admin, filepath.Join(o.Dir, "kubeconfig")
	if cp.Client, err = client.New(admin, client.Options{Scheme: cp.Scheme}); err != nil {
		return nil, cp.stopAfter(err)
	}
	cp.ManagerKubeconfig = filepath.Join(o.Dir, "manager.kubeconfig")
	if _, err := WriteKubeconfig(cp.Env, ServiceAccountUser(OperatorNamespace, ManagerSA), cp.ManagerKubeconfig); err != nil {
		return nil, cp.stopAfter(err)
	}
	cp.ReceiverKubeconfig = filepath.Join(o.Dir, "receiver.kubeconfig")
	if _, err := WriteKubeconfig(cp.Env, ServiceAccountUser(OperatorNamespace, ReceiverSA), cp.ReceiverKubeconfig); err != nil {
		return nil, cp.stopAfter(err)
	}
	if _, err := ApplyRBAC(ctx, cp.Client, o.Root, OperatorNamespace, "wechat-operator-harness"); err != nil {
		return nil, cp.stopAfter(err)
	}
	return cp, nil
}

func (cp *ControlPlane) stopAfter(err error) error {
	_ = cp.Env.Stop()
	return err
}

// StopAPIServer stops kube-apiserver (etcd keeps running). Clients see connection errors
// until StartAPIServer.
func (cp *ControlPlane) StopAPIServer() error {
	return cp.Env.ControlPlane.GetAPIServer().Stop()
}

// StartAPIServer starts kube-apiserver again on the same address with the same
// certificates, so every kubeconfig written before keeps working.
func (cp *ControlPlane) StartAPIServer() error {
	return cp.Env.ControlPlane.GetAPIServer().Start()
}

// Stop stops kube-apiserver and etcd.
func (cp *ControlPlane) Stop() error {
	return cp.Env.Stop()
}
