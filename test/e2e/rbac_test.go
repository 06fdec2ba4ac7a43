/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/test/kustomize"
)

// The API server decides every question here: SubjectAccessReviews ask "may this
// ServiceAccount do X", SelfSubjectRulesReviews (as the ServiceAccount, by impersonation)
// list everything it may do. Neither reads the YAML.

const (
	group   = "platform.wechat-operator.dev"
	appNS   = "default" // any namespace apps keep their WeChatComponents in
	keyName = keyring.DefaultSecretName
)

// serviceAccount is how the API server sees a pod's ServiceAccount token.
type serviceAccount struct{ namespace, name string }

func (sa serviceAccount) user() string {
	return "system:serviceaccount:" + sa.namespace + ":" + sa.name
}

func (sa serviceAccount) groups() []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + sa.namespace, "system:authenticated"}
}

var (
	manager  = serviceAccount{operatorNamespace, managerSA}
	receiver = serviceAccount{operatorNamespace, receiverSA}
	// nobody is a ServiceAccount with no bindings: what every ServiceAccount may do anyway.
	nobody = serviceAccount{operatorNamespace, "nobody"}
)

// access is one question to the authorizer.
type access struct {
	verb, group, resource, subresource, namespace, name string
}

func (a access) String() string {
	s := a.verb + " " + a.resource
	if a.subresource != "" {
		s += "/" + a.subresource
	}
	if a.name != "" {
		s += " " + a.name
	}
	return s + " in " + a.namespace
}

// allowed asks the API server whether sa may do a.
func allowed(sa serviceAccount, a access) bool {
	GinkgoHelper()
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   sa.user(),
		Groups: sa.groups(),
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource,
			Namespace: a.namespace, Name: a.name,
		},
	}}
	Expect(k8sClient.Create(ctx, review)).To(Succeed())
	return review.Status.Allowed
}

// rules lists, as "verb group/resource[ name]" strings, everything sa may do in namespace,
// according to a SelfSubjectRulesReview made as sa.
func rules(sa serviceAccount, namespace string) sets.Set[string] {
	GinkgoHelper()
	impersonating := rest.CopyConfig(cfg)
	impersonating.Impersonate = rest.ImpersonationConfig{UserName: sa.user(), Groups: sa.groups()}
	c, err := client.New(impersonating, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	review := &authorizationv1.SelfSubjectRulesReview{Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: namespace}}
	Expect(c.Create(ctx, review)).To(Succeed())
	Expect(review.Status.Incomplete).To(BeFalse(), review.Status.EvaluationError)
	out := sets.New[string]()
	for _, r := range review.Status.ResourceRules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					for _, n := range names {
						out.Insert(grant(v, g, res, n))
					}
				}
			}
		}
	}
	return out
}

// granted is what sa may do in namespace beyond what any ServiceAccount may.
func granted(sa serviceAccount, namespace string) sets.Set[string] {
	GinkgoHelper()
	return rules(sa, namespace).Difference(rules(nobody, namespace))
}

func grant(verb, group, resource, name string) string {
	if group == "" {
		group = "core"
	}
	s := verb + " " + group + "/" + resource
	if name != "" {
		s += " " + name
	}
	return s
}

// perms expands verbs × resources of one API group into grants.
func perms(group string, resources, verbs []string, names ...string) []string {
	if len(names) == 0 {
		names = []string{""}
	}
	var out []string
	for _, r := range resources {
		for _, v := range verbs {
			for _, n := range names {
				out = append(out, grant(v, group, r, n))
			}
		}
	}
	return out
}

func list(s ...string) []string { return s }

// diff explains how two sets of grants differ.
func diff(got, want sets.Set[string]) string {
	extra, missing := sets.List(got.Difference(want)), sets.List(want.Difference(got))
	var b strings.Builder
	if len(extra) > 0 {
		fmt.Fprintf(&b, "granted beyond the design:\n  %s\n", strings.Join(extra, "\n  "))
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, "designed but not granted:\n  %s\n", strings.Join(missing, "\n  "))
	}
	b.WriteString("If the design changed on purpose, update DESIGN.md section 2 (\"Who may do what\") and this test.")
	return b.String()
}

// The design (DESIGN.md section 2, "Who may do what"), as grants.
var (
	// manager: CRs and their status, the Secrets it manages, Events, its Lease.
	managerEverywhere = slices.Concat(
		// Token Secrets, authorizer state Secrets, the keyring: written, never deleted
		// (owner references let the garbage collector delete them with their CR).
		// Credentials Secrets are only read, and only when they opt in (usable-by). RBAC
		// cannot narrow a ClusterRole to labelled Secrets; the manager's cache and watches
		// are narrowed to them instead (config/namespaced narrows it to namespaces).
		perms("", list("secrets"), list("create", "get", "list", "update", "watch")),
		perms("", list("events"), list("create", "patch")),
		perms("events.k8s.io", list("events"), list("create", "patch")),
		perms(group, list("wechatcomponents"), list("get", "list", "patch", "update", "watch")),
		// create: an authorization that reached only the redirect page is recorded by
		// creating the WeChatAuthorizer (spec.authorizers.autoCreate).
		perms(group, list("wechatauthorizers"), list("create", "get", "list", "patch", "update", "watch")),
		perms(group, list("wechatcomponents/status", "wechatauthorizers/status"), list("get", "patch", "update")),
		perms(group, list("wechatcomponents/finalizers", "wechatauthorizers/finalizers"), list("update")),
		// The HTTPS /metrics ask the API server who a scraper is and whether it may read them.
		perms("authentication.k8s.io", list("tokenreviews"), list("create")),
		perms("authorization.k8s.io", list("subjectaccessreviews"), list("create")),
	)
	managerInOperatorNamespace = slices.Concat(managerEverywhere,
		perms("coordination.k8s.io", list("leases"), list("create", "delete", "get", "list", "patch", "update", "watch")),
	)

	// receiver: read the CRs, patch their status, create Events, and read exactly one
	// Secret: the keyring. It creates no WeChatAuthorizer (the manager does autoCreate).
	receiverEverywhere = slices.Concat(
		perms(group, list("wechatcomponents", "wechatauthorizers"), list("get", "list", "watch")),
		perms(group, list("wechatcomponents/status", "wechatauthorizers/status"), list("get", "patch")),
		perms("", list("events"), list("create", "patch")),
		perms("events.k8s.io", list("events"), list("create", "patch")),
	)
	receiverInOperatorNamespace = slices.Concat(receiverEverywhere,
		perms("", list("secrets"), list("get", "list", "watch"), keyName),
	)
)

var _ = Describe("RBAC of config/default", func() {
	Context("everything each ServiceAccount may do, as the API server lists it", func() {
		It("gives the receiver exactly the design's permissions", func() {
			got := granted(receiver, operatorNamespace)
			Expect(got.Equal(sets.New(receiverInOperatorNamespace...))).To(BeTrue(), diff(got, sets.New(receiverInOperatorNamespace...)))
			got = granted(receiver, appNS)
			Expect(got.Equal(sets.New(receiverEverywhere...))).To(BeTrue(), diff(got, sets.New(receiverEverywhere...)))
		})

		It("gives the manager exactly the design's permissions", func() {
			got := granted(manager, operatorNamespace)
			Expect(got.Equal(sets.New(managerInOperatorNamespace...))).To(BeTrue(), diff(got, sets.New(managerInOperatorNamespace...)))
			got = granted(manager, appNS)
			Expect(got.Equal(sets.New(managerEverywhere...))).To(BeTrue(), diff(got, sets.New(managerEverywhere...)))
		})

		It("compares against a ServiceAccount that really has no permissions", func() {
			// Guards the subtraction above: the baseline must not hide anything.
			Expect(allowed(nobody, access{"get", "", "secrets", "", operatorNamespace, keyName})).To(BeFalse())
			Expect(allowed(nobody, access{"list", group, "wechatcomponents", "", appNS, ""})).To(BeFalse())
		})
	})

	DescribeTable("the webhook receiver's ServiceAccount (internet-facing: it may read one Secret and write only status)",
		func(want bool, a access) {
			Expect(allowed(receiver, a)).To(Equal(want), "receiver: %s", a)
		},
		Entry("can get the keyring Secret", true, access{"get", "", "secrets", "", operatorNamespace, keyName}),
		Entry("can list the keyring Secret (a metadata.name field selector)", true, access{"list", "", "secrets", "", operatorNamespace, keyName}),
		Entry("can watch the keyring Secret", true, access{"watch", "", "secrets", "", operatorNamespace, keyName}),
		Entry("cannot list the Secrets of its namespace", false, access{"list", "", "secrets", "", operatorNamespace, ""}),
		Entry("cannot watch the Secrets of its namespace", false, access{"watch", "", "secrets", "", operatorNamespace, ""}),
		Entry("cannot get another Secret of its namespace", false, access{"get", "", "secrets", "", operatorNamespace, "wechat-operator-manager-token"}),
		Entry("cannot get a credentials Secret (the AppSecret)", false, access{"get", "", "secrets", "", appNS, "demo-platform-credentials"}),
		Entry("cannot get a token Secret", false, access{"get", "", "secrets", "", appNS, "demo-platform-component-token"}),
		Entry("cannot get an authorizer state Secret (the refresh token)", false, access{"get", "", "secrets", "", appNS, "demo-platform-wx1a2b3c4d5e6f7a8b-state"}),
		Entry("cannot get a Secret named like the keyring in another namespace", false, access{"get", "", "secrets", "", appNS, keyName}),
		Entry("cannot list Secrets anywhere else", false, access{"list", "", "secrets", "", appNS, ""}),
		Entry("cannot create Secrets", false, access{"create", "", "secrets", "", operatorNamespace, ""}),
		Entry("cannot update the keyring", false, access{"update", "", "secrets", "", operatorNamespace, keyName}),
		Entry("cannot patch the keyring", false, access{"patch", "", "secrets", "", operatorNamespace, keyName}),
		Entry("cannot delete the keyring", false, access{"delete", "", "secrets", "", operatorNamespace, keyName}),

		Entry("can get WeChatComponents", true, access{"get", group, "wechatcomponents", "", appNS, ""}),
		Entry("can watch WeChatAuthorizers", true, access{"watch", group, "wechatauthorizers", "", appNS, ""}),
		Entry("cannot update a WeChatComponent's spec", false, access{"update", group, "wechatcomponents", "", appNS, "demo-platform"}),
		Entry("cannot patch a WeChatComponent's spec", false, access{"patch", group, "wechatcomponents", "", appNS, "demo-platform"}),
		Entry("cannot update a WeChatAuthorizer's spec", false, access{"update", group, "wechatauthorizers", "", appNS, ""}),
		Entry("cannot patch a WeChatAuthorizer's spec", false, access{"patch", group, "wechatauthorizers", "", appNS, ""}),
		Entry("cannot delete WeChatComponents", false, access{"delete", group, "wechatcomponents", "", appNS, ""}),
		Entry("cannot delete WeChatAuthorizers", false, access{"delete", group, "wechatauthorizers", "", appNS, ""}),
		Entry("cannot create WeChatComponents", false, access{"create", group, "wechatcomponents", "", appNS, ""}),
		Entry("cannot update finalizers", false, access{"update", group, "wechatcomponents", "finalizers", appNS, ""}),
		Entry("can patch a WeChatComponent's status (tickets)", true, access{"patch", group, "wechatcomponents", "status", appNS, "demo-platform"}),
		Entry("can patch a WeChatAuthorizer's status (authorization codes)", true, access{"patch", group, "wechatauthorizers", "status", appNS, ""}),
		Entry("cannot replace a status wholesale (update)", false, access{"update", group, "wechatcomponents", "status", appNS, ""}),
		Entry("cannot create WeChatAuthorizers (the manager does authorizers.autoCreate)", false, access{"create", group, "wechatauthorizers", "", appNS, ""}),
		Entry("can create Events", true, access{"create", "", "events", "", appNS, ""}),

		Entry("cannot touch the leader-election Lease", false, access{"update", "coordination.k8s.io", "leases", "", operatorNamespace, "wechat-operator-manager"}),
		Entry("cannot read ConfigMaps", false, access{"get", "", "configmaps", "", operatorNamespace, ""}),
		Entry("cannot list Pods", false, access{"list", "", "pods", "", operatorNamespace, ""}),
		Entry("cannot mint ServiceAccount tokens", false, access{"create", "", "serviceaccounts", "token", operatorNamespace, managerSA}),
		Entry("cannot impersonate the manager", false, access{"impersonate", "", "serviceaccounts", "", operatorNamespace, managerSA}),
	)

	DescribeTable("the manager's ServiceAccount (refreshes tokens; never deletes Secrets)",
		func(want bool, a access) {
			Expect(allowed(manager, a)).To(Equal(want), "manager: %s", a)
		},
		Entry("can read a credentials Secret", true, access{"get", "", "secrets", "", appNS, "demo-platform-credentials"}),
		Entry("can create token Secrets", true, access{"create", "", "secrets", "", appNS, ""}),
		Entry("can update token Secrets", true, access{"update", "", "secrets", "", appNS, "demo-platform-component-token"}),
		Entry("can update the keyring", true, access{"update", "", "secrets", "", operatorNamespace, keyName}),
		Entry("cannot patch Secrets (it writes whole objects, guarded by resourceVersion)", false, access{"patch", "", "secrets", "", appNS, "demo-platform-credentials"}),
		Entry("cannot delete Secrets", false, access{"delete", "", "secrets", "", appNS, "demo-platform-credentials"}),
		Entry("cannot delete an authorizer state Secret (the refresh token)", false, access{"delete", "", "secrets", "", appNS, "demo-platform-wx1a2b3c4d5e6f7a8b-state"}),
		Entry("cannot delete the keyring", false, access{"delete", "", "secrets", "", operatorNamespace, keyName}),
		Entry("cannot delete collections of Secrets", false, access{"deletecollection", "", "secrets", "", appNS, ""}),

		Entry("can update WeChatComponents (finalizers, annotations)", true, access{"update", group, "wechatcomponents", "", appNS, ""}),
		Entry("can update status", true, access{"update", group, "wechatauthorizers", "status", appNS, ""}),
		Entry("cannot create WeChatComponents", false, access{"create", group, "wechatcomponents", "", appNS, ""}),
		Entry("cannot delete WeChatComponents", false, access{"delete", group, "wechatcomponents", "", appNS, ""}),
		Entry("cannot delete WeChatAuthorizers", false, access{"delete", group, "wechatauthorizers", "", appNS, ""}),

		Entry("can take its Lease in the operator namespace", true, access{"update", "coordination.k8s.io", "leases", "", operatorNamespace, "wechat-operator-manager"}),
		Entry("cannot touch Leases in other namespaces", false, access{"update", "coordination.k8s.io", "leases", "", "kube-system", "kube-controller-manager"}),
		Entry("can create Events", true, access{"create", "events.k8s.io", "events", "", appNS, ""}),

		Entry("can review a scraper's token (HTTPS /metrics)", true, access{"create", "authentication.k8s.io", "tokenreviews", "", "", ""}),
		Entry("can ask whether a scraper may read /metrics", true, access{"create", "authorization.k8s.io", "subjectaccessreviews", "", "", ""}),
		Entry("cannot read ConfigMaps", false, access{"get", "", "configmaps", "", appNS, ""}),
		Entry("cannot list Pods", false, access{"list", "", "pods", "", appNS, ""}),
		Entry("cannot exec into Pods", false, access{"create", "", "pods", "exec", appNS, ""}),
		Entry("cannot mint ServiceAccount tokens", false, access{"create", "", "serviceaccounts", "token", operatorNamespace, receiverSA}),
		Entry("cannot impersonate", false, access{"impersonate", "", "users", "", "", "admin"}),
		Entry("cannot bind roles", false, access{"bind", "rbac.authorization.k8s.io", "clusterroles", "", "", "cluster-admin"}),
		Entry("cannot escalate roles", false, access{"escalate", "rbac.authorization.k8s.io", "clusterroles", "", "", "wechat-operator-manager-role"}),
		Entry("cannot create RoleBindings", false, access{"create", "rbac.authorization.k8s.io", "rolebindings", "", appNS, ""}),
		Entry("cannot change the CRDs", false, access{"update", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "wechatcomponents." + group}),
	)
})

var _ = Describe("RBAC of config/namespaced (the manager with --watch-namespaces)", func() {
	var objs []*unstructured.Unstructured
	BeforeEach(func() {
		var err error
		objs, err = kustomize.Render(filepath.Join("..", "..", "config", "namespaced"))
		Expect(err).NotTo(HaveOccurred())
	})

	It("binds the manager by RoleBindings in its namespaces, and cluster-wide only to review scrapers", func() {
		var inNamespaces []string
		for _, u := range kustomize.OfKind(objs, "RoleBinding", "ClusterRoleBinding") {
			var b rbacv1.RoleBinding
			Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b)).To(Succeed())
			if b.Subjects[0].Name != managerSA {
				continue
			}
			if u.GetKind() == "RoleBinding" {
				inNamespaces = append(inNamespaces, b.Namespace+"/"+b.RoleRef.Name)
				continue
			}
			var role rbacv1.ClusterRole
			Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(kustomize.Find(objs, "ClusterRole", b.RoleRef.Name).Object, &role)).To(Succeed())
			for _, r := range role.Rules {
				Expect(r.Verbs).To(Equal([]string{"create"}), "ClusterRoleBinding %s: %v", b.Name, r)
				Expect(r.Resources).To(HaveEach(BeElementOf("tokenreviews", "subjectaccessreviews")), "ClusterRoleBinding %s: %v", b.Name, r)
			}
		}
		Expect(inNamespaces).To(ConsistOf("wechat-apps/wechat-operator-manager-role",
			operatorNamespace+"/wechat-operator-manager-role", operatorNamespace+"/wechat-operator-leader-election-role"))
	})

	It("runs the manager with --watch-namespaces naming the namespaces it has RoleBindings in", func() {
		u := kustomize.Find(objs, "Deployment", managerDeployment)
		Expect(u).NotTo(BeNil())
		var d appsv1.Deployment
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &d)).To(Succeed())
		Expect(d.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--watch-namespaces=wechat-apps"))
	})
})
