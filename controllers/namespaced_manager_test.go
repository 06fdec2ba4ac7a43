/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
)

// decodeRBAC reads the RBAC objects of one file under config/, as typed objects.
func decodeRBAC(path ...string) []client.Object {
	GinkgoHelper()
	data, err := os.ReadFile(filepath.Join(append([]string{"..", "config"}, path...)...))
	Expect(err).NotTo(HaveOccurred())
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(data)), 4096)
	var out []client.Object
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return out
		} else {
			Expect(err).NotTo(HaveOccurred())
		}
		if raw == nil {
			continue
		}
		var obj client.Object
		switch raw["kind"] {
		case "ClusterRole":
			obj = &rbacv1.ClusterRole{}
		case "ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		case "RoleBinding":
			obj = &rbacv1.RoleBinding{}
		default:
			continue
		}
		Expect(runtimeFromMap(raw, obj)).To(Succeed())
		out = append(out, obj)
	}
}

// The manager with --watch-namespaces, running as a ServiceAccount that holds only the
// RoleBindings of config/namespaced (and its ClusterRole for checking scrapers' tokens):
// it serves its namespace, cannot read a Secret anywhere else, and its HTTPS /metrics
// answer only a caller the API server authenticates and authorizes.
var _ = Describe("the manager in --watch-namespaces mode, with Roles only", func() {
	It("serves its namespace, reads no Secret elsewhere, and serves metrics only to authorized callers", func() {
		watched, operatorNS, elsewhere := newNamespace(), newNamespace(), newNamespace()
		suffix := "-" + watched
		user := "system:serviceaccount:" + operatorNS + ":wechat-operator-manager"

		By("granting exactly what config/namespaced grants, in these namespaces")
		role := decodeRBAC("rbac", "role.yaml")[0].(*rbacv1.ClusterRole)
		role.Name += suffix
		Expect(k8sClient.Create(ctx, role)).To(Succeed())
		bindings := decodeRBAC("namespaced", "manager_rolebindings.yaml")
		Expect(bindings).To(HaveLen(2))
		for i, ns := range []string{watched, operatorNS} {
			b := bindings[i].(*rbacv1.RoleBinding)
			b.Namespace, b.RoleRef.Name, b.Subjects[0].Namespace = ns, role.Name, operatorNS
			Expect(k8sClient.Create(ctx, b)).To(Succeed())
		}
		for _, o := range decodeRBAC("namespaced", "metrics_auth_role.yaml") {
			switch t := o.(type) {
			case *rbacv1.ClusterRole:
				t.Name += suffix
			case *rbacv1.ClusterRoleBinding:
				t.Name += suffix
				t.RoleRef.Name += suffix
				t.Subjects[0].Namespace = operatorNS
			}
			Expect(k8sClient.Create(ctx, o)).To(Succeed())
		}
		asManager := rest.CopyConfig(cfg)
		asManager.Impersonate = rest.ImpersonationConfig{UserName: user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + operatorNS, "system:authenticated"}}
		direct, err := client.New(asManager, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		err = direct.List(ctx, &corev1.SecretList{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "listing Secrets cluster-wide: %v", err)
		err = direct.Get(ctx, client.ObjectKey{Namespace: elsewhere, Name: "creds"}, &corev1.Secret{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "reading a Secret of another namespace: %v", err)

		By("starting the manager as that ServiceAccount, with HTTPS metrics")
		port := freePort()
		mgr, err := ctrl.NewManager(asManager, ctrl.Options{
			Scheme:     scheme,
			Cache:      CacheOptions(operatorNS, []string{watched}),
			Metrics:    MetricsServerOptions(fmt.Sprintf("127.0.0.1:%d", port), true, ""),
			Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		})
		Expect(err).NotTo(HaveOccurred())
		r := &WeChatComponentReconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: scheme, Recorder: events.NewFakeRecorder(100),
			WeChat: wxapi.New(wxapi.Options{BaseURL: "http://127.0.0.1:1", RateLimit: rate.Inf, Metrics: wxapi.NewMetrics()}),
			Clock:  clock.RealClock{}, Random: func() float64 { return 0.5 },
			KeyringNamespace: operatorNS, KeyringName: testKeyringName,
		}
		Expect(r.SetupWithManager(mgr, 1)).To(Succeed())
		mctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() {
			defer GinkgoRecover()
			Expect(mgr.Start(mctx)).To(Succeed())
		}()

		By("projecting the keys of a component in its namespace, and ignoring one elsewhere")
		(&world{ns: elsewhere, key: client.ObjectKey{Namespace: elsewhere, Name: "platform"}}).createComponent()
		(&world{ns: watched, key: client.ObjectKey{Namespace: watched, Name: "platform"}}).createComponent()
		ring := &corev1.Secret{}
		Eventually(func() map[string][]byte {
			_ = k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNS, Name: testKeyringName}, ring)
			return ring.Data
		}).Should(HaveKey(keyring.TokenKey(watched, "platform")))
		Expect(ring.Data).NotTo(HaveKey(keyring.TokenKey(elsewhere, "platform")))
		other := &wechatv1alpha1.WeChatComponent{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: elsewhere, Name: "platform"}, other)).To(Succeed())
		Expect(other.Status.Conditions).To(BeEmpty(), "a component outside --watch-namespaces is not reconciled")

		By("refusing a scrape without a token, and with the token of a ServiceAccount not allowed /metrics")
		url := fmt.Sprintf("https://127.0.0.1:%d/metrics", port)
		Eventually(func() int { return scrape(url, "") }).Should(Equal(http.StatusUnauthorized))
		// A token the API server cannot parse fails the TokenReview itself: refused all the same.
		Expect(scrape(url, "not-a-token")).To(BeElementOf(http.StatusUnauthorized, http.StatusInternalServerError))
		Expect(scrape(url, serviceAccountToken(operatorNS, "nobody"))).To(Equal(http.StatusForbidden))

		By("answering the token of a ServiceAccount bound to config/rbac's metrics-reader")
		reader := decodeRBAC("rbac", "metrics_reader_role.yaml")[0].(*rbacv1.ClusterRole)
		reader.Name += suffix
		Expect(k8sClient.Create(ctx, reader)).To(Succeed())
		Expect(k8sClient.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "prometheus" + suffix},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: operatorNS}},
		})).To(Succeed())
		Expect(scrape(url, serviceAccountToken(operatorNS, "prometheus"))).To(Equal(http.StatusOK))
	})
})

// freePort is a TCP port nothing listens on right now.
func freePort() int {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// serviceAccountToken creates ServiceAccount name and returns a token the API server issued for it.
func serviceAccountToken(ns, name string) string {
	GinkgoHelper()
	Expect(k8sClient.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})).To(Succeed())
	cs, err := kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return tr.Status.Token
}

// scrape GETs url (the manager's self-signed HTTPS endpoint) with a bearer token and returns the status code, 0 if unreachable.
func scrape(url, token string) int {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed, loopback
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && !strings.Contains(string(body), "controller_runtime_") {
		return -1 // not the metrics
	}
	return resp.StatusCode
}

// runtimeFromMap converts a decoded YAML document into obj.
func runtimeFromMap(raw map[string]any, obj client.Object) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(raw, obj)
}
