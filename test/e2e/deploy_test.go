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
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wechat-operator/wechat-operator/test/kustomize"
)

// typed returns the rendered object of kind and name, converted into out.
func typed[T any](kind, name string, out *T) *T {
	GinkgoHelper()
	u := kustomize.Find(rendered, kind, name)
	Expect(u).NotTo(BeNil(), "config/default renders no %s %s", kind, name)
	Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out)).To(Succeed())
	return out
}

func deployment(name string) *appsv1.Deployment {
	GinkgoHelper()
	return typed("Deployment", name, &appsv1.Deployment{})
}

// containerPort returns the port number of a named container port of d's first container.
func containerPort(d *appsv1.Deployment, name string) int32 {
	GinkgoHelper()
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	Fail(fmt.Sprintf("Deployment %s has no container port %q", d.Name, name))
	return 0
}

// podFrom is a Pod made from a Deployment's template, as the ReplicaSet controller would.
func podFrom(d *appsv1.Deployment) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: d.Name + "-", Namespace: d.Namespace, Labels: d.Spec.Template.Labels},
		Spec:       *d.Spec.Template.Spec.DeepCopy(),
	}
}

var _ = Describe("config/default", func() {
	It("binds each role to the ServiceAccount its Deployment runs as", func() {
		runsAs := map[string]string{
			managerDeployment:  deployment(managerDeployment).Spec.Template.Spec.ServiceAccountName,
			receiverDeployment: deployment(receiverDeployment).Spec.Template.Spec.ServiceAccountName,
		}
		Expect(runsAs).To(Equal(map[string]string{managerDeployment: managerSA, receiverDeployment: receiverSA}))
		for _, u := range kustomize.OfKind(rendered, "RoleBinding", "ClusterRoleBinding") {
			var b rbacv1.RoleBinding // a ClusterRoleBinding has the same subjects and roleRef
			Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b)).To(Succeed())
			Expect(b.Subjects).To(HaveLen(1), "%s %s", u.GetKind(), u.GetName())
			s := b.Subjects[0]
			Expect(s.Kind).To(Equal("ServiceAccount"), "%s %s", u.GetKind(), u.GetName())
			Expect(s.Namespace).To(Equal(operatorNamespace), "%s %s", u.GetKind(), u.GetName())
			Expect(s.Name).To(BeElementOf(managerSA, receiverSA), "%s %s", u.GetKind(), u.GetName())
			Expect(kustomize.Find(rendered, b.RoleRef.Kind, b.RoleRef.Name)).NotTo(BeNil(), "%s %s binds a missing %s %s", u.GetKind(), u.GetName(), b.RoleRef.Kind, b.RoleRef.Name)
		}
	})

	It("lets the receiver read the keyring the manager writes, under the name both use", func() {
		for _, d := range []*appsv1.Deployment{deployment(managerDeployment), deployment(receiverDeployment)} {
			for _, arg := range d.Spec.Template.Spec.Containers[0].Args {
				if v, ok := strings.CutPrefix(arg, "--keyring-secret="); ok {
					Expect(v).To(Equal(keyName), "Deployment %s renames the keyring; the receiver's Role names %s", d.Name, keyName)
				}
			}
		}
		var role rbacv1.Role
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "wechat-operator-webhook-receiver-keyring-role"}, &role)).To(Succeed())
		Expect(role.Rules).To(HaveLen(1))
		Expect(role.Rules[0].ResourceNames).To(Equal([]string{keyName}))
	})

	It("runs the manager leader-elected and at least two receivers", func() {
		m, r := deployment(managerDeployment), deployment(receiverDeployment)
		Expect(m.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--leader-elect"))
		Expect(*r.Spec.Replicas).To(BeNumerically(">=", 2))
		for _, d := range []*appsv1.Deployment{m, r} {
			c := d.Spec.Template.Spec.Containers[0]
			Expect(c.LivenessProbe).NotTo(BeNil(), d.Name)
			Expect(c.ReadinessProbe).NotTo(BeNil(), d.Name)
			Expect(c.Resources.Requests).NotTo(BeEmpty(), d.Name)
			Expect(c.Resources.Limits).To(HaveKey(corev1.ResourceMemory), d.Name)
		}
	})

	Context("Pod Security", func() {
		It("enforces the restricted standard on the operator's namespace", func() {
			var ns corev1.Namespace
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: operatorNamespace}, &ns)).To(Succeed())
			Expect(ns.Labels).To(HaveKeyWithValue("pod-security.kubernetes.io/enforce", "restricted"))
		})

		It("admits the manager's and the receiver's pods there", func() {
			for _, name := range []string{managerDeployment, receiverDeployment} {
				// A dry run goes through admission, PodSecurity included, and stores nothing.
				Expect(k8sClient.Create(ctx, podFrom(deployment(name)), client.DryRunAll)).To(Succeed(), "a pod of %s", name)
			}
		})

		It("really is enforced by this API server (a root pod is rejected)", func() {
			pod := podFrom(deployment(receiverDeployment))
			pod.Spec.SecurityContext = nil
			pod.Spec.Containers[0].SecurityContext = nil
			err := k8sClient.Create(ctx, pod, client.DryRunAll)
			Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want a PodSecurity rejection, got %v", err)
			Expect(err.Error()).To(ContainSubstring("restricted"))
		})
	})

	Context("network", func() {
		policy := func(name string) *networkingv1.NetworkPolicy {
			GinkgoHelper()
			return typed("NetworkPolicy", name, &networkingv1.NetworkPolicy{})
		}
		selects := func(p *networkingv1.NetworkPolicy, d *appsv1.Deployment) bool {
			GinkgoHelper()
			sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
			Expect(err).NotTo(HaveOccurred())
			return sel.Matches(labels.Set(d.Spec.Template.Labels))
		}
		ingressPorts := func(p *networkingv1.NetworkPolicy) []int32 {
			var ports []int32
			for _, rule := range p.Spec.Ingress {
				for _, port := range rule.Ports {
					ports = append(ports, port.Port.IntVal)
				}
			}
			slices.Sort(ports)
			return ports
		}

		It("denies all traffic in the operator's namespace unless allowed", func() {
			p := policy("wechat-operator-default-deny")
			Expect(p.Spec.PodSelector.MatchLabels).To(BeEmpty())
			Expect(p.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress))
			Expect(p.Spec.Ingress).To(BeEmpty())
			Expect(p.Spec.Egress).To(BeEmpty())
		})

		It("opens exactly the receiver's push and internal ports, to its pods only", func() {
			r, m := deployment(receiverDeployment), deployment(managerDeployment)
			p := policy("wechat-operator-webhook-receiver")
			Expect(selects(p, r)).To(BeTrue())
			Expect(selects(p, m)).To(BeFalse())
			Expect(ingressPorts(p)).To(Equal([]int32{containerPort(r, "http"), containerPort(r, "internal")}))
		})

		It("opens only the manager's metrics port, to its pods only", func() {
			r, m := deployment(receiverDeployment), deployment(managerDeployment)
			p := policy("wechat-operator-manager")
			Expect(selects(p, m)).To(BeTrue())
			Expect(selects(p, r)).To(BeFalse())
			Expect(ingressPorts(p)).To(Equal([]int32{containerPort(m, "metrics")}))
		})

		It("lets the receiver and the manager out only on the API ports (never to link-local addresses) and to opted-in pods", func() {
			for _, name := range []string{"wechat-operator-webhook-receiver", "wechat-operator-manager"} {
				for _, rule := range policy(name).Spec.Egress {
					Expect(rule.To).NotTo(BeEmpty(), "%s: an egress rule to anywhere", name)
					for _, peer := range rule.To {
						if peer.IPBlock == nil {
							Expect(peer.PodSelector).NotTo(BeNil(), "%s: a peer that is neither an address block nor selected pods", name)
							Expect(peer.PodSelector.MatchLabels).To(HaveKeyWithValue("platform.wechat-operator.dev/message-forwarding", "allowed"))
							continue
						}
						var ports []int32
						for _, p := range rule.Ports {
							ports = append(ports, p.Port.IntVal)
						}
						Expect(ports).To(ConsistOf(int32(443), int32(6443)), "%s: %s", name, peer.IPBlock.CIDR)
						Expect(peer.IPBlock.Except).To(ContainElement(BeElementOf("169.254.0.0/16", "fe80::/10")),
							"%s: %s must exclude link-local (metadata) addresses", name, peer.IPBlock.CIDR)
					}
				}
			}
		})

		It("exposes only the receiver's push port through the example Ingress", func() {
			ing := typed("Ingress", "wechat-operator-webhook-receiver", &networkingv1.Ingress{})
			svc := typed("Service", "wechat-operator-webhook-receiver", &corev1.Service{})
			r := deployment(receiverDeployment)
			Expect(labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(r.Spec.Template.Labels))).To(BeTrue())
			for _, rule := range ing.Spec.Rules {
				for _, path := range rule.HTTP.Paths {
					Expect(path.Path).To(Equal("/wechat/"))
					Expect(path.Backend.Service.Name).To(Equal(svc.Name))
					var target string
					for _, sp := range svc.Spec.Ports {
						if sp.Name == path.Backend.Service.Port.Name || sp.Port == path.Backend.Service.Port.Number {
							target = sp.TargetPort.String()
						}
					}
					Expect(target).To(Equal("http"), "the Ingress must reach the push port, never the internal one")
				}
			}
		})
	})
})

var _ = Describe("the consumer example in config/samples", func() {
	var consumer *appsv1.Deployment
	BeforeEach(func() {
		samples, err := kustomize.Render(filepath.Join("..", "..", "config", "samples"))
		Expect(err).NotTo(HaveOccurred())
		u := kustomize.Find(samples, "Deployment", "wechat-token-consumer")
		Expect(u).NotTo(BeNil())
		consumer = &appsv1.Deployment{}
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, consumer)).To(Succeed())
		comp := kustomize.OfKind(samples, "WeChatComponent")
		auth := kustomize.OfKind(samples, "WeChatAuthorizer")
		Expect(comp).To(HaveLen(1))
		Expect(auth).To(HaveLen(1))
		// The names the operator gives token Secrets by default (DESIGN section 6).
		var secrets []string
		for _, v := range consumer.Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				secrets = append(secrets, v.Secret.SecretName)
			}
		}
		Expect(secrets).To(ConsistOf(comp[0].GetName()+"-component-token", auth[0].GetName()+"-token"))
	})

	It("reads tokens from files that update, never from subPath mounts or environment variables", func() {
		for _, c := range consumer.Spec.Template.Spec.Containers {
			for _, m := range c.VolumeMounts {
				Expect(m.SubPath).To(BeEmpty(), "a subPath mount never sees a refreshed token")
			}
			for _, e := range c.Env {
				Expect(e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil).To(BeTrue(), "an environment variable never sees a refreshed token")
			}
			Expect(c.EnvFrom).To(BeEmpty())
		}
	})

	It("passes the restricted Pod Security Standard", func() {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "apps-", Labels: map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted",
		}}}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		consumer.Namespace = ns.Name
		Expect(k8sClient.Create(ctx, podFrom(consumer), client.DryRunAll)).To(Succeed())
	})
})
