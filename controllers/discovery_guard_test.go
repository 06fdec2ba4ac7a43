/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// Discovery under lasting Kubernetes-side failures, wake-ups between pages, start page
// requests arriving with a page due, and state Secrets the operator did not write.
var _ = Describe("spec.authorizers.discover guards", func() {
	var w *world
	AfterEach(func() { w.close() })

	platformReady := func(mutate ...func(*wechatv1alpha1.WeChatComponent)) {
		w = newWorld()
		w.createComponent(mutate...)
		w.reconcile()
		w.pushTicket()
		w.reconcile()
		Expect(w.tokenSecret()).NotTo(BeNil())
	}
	seed := func(n int) []string {
		ids := make([]string, n)
		for i := range n {
			ids[i] = fmt.Sprintf("wx%016x", 0xe000+i)
			Expect(w.sim.PutAuthorizer(wxsim.AuthorizerSeed{ComponentAppID: testComponentAppID, AppID: ids[i], Authorized: true})).To(Succeed())
		}
		return ids
	}
	discover := func(pass string) {
		c := w.component()
		patch := client.MergeFrom(c.DeepCopy())
		c.Spec.Authorizers.Discover = pass
		Expect(k8sClient.Patch(ctx, c, patch)).To(Succeed())
	}
	// wake touches the component as any watch event would, and reconciles.
	wake := func(i int) {
		c := w.component()
		patch := client.MergeFrom(c.DeepCopy())
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations["example.com/poke"] = fmt.Sprint(i)
		Expect(k8sClient.Patch(ctx, c, patch)).To(Succeed())
		w.reconcile()
	}
	listCalls := func() int { return w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID) }
	discovered := func() *metav1.Condition {
		return condition(w.component().Status.Conditions, wechatv1alpha1.ConditionDiscovered)
	}

	It("backs off when Kubernetes refuses the page's WeChatAuthorizers, whatever wakes the component", func() {
		platformReady()
		seed(2)
		// An admission policy refusing every WeChatAuthorizer create with Forbidden, as a full
		// ResourceQuota would (envtest runs no quota controller, so a quota does not).
		forbidden := metav1.StatusReasonForbidden
		policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "no-authorizers-" + w.ns},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule: admissionregistrationv1.Rule{APIGroups: []string{wechatv1alpha1.GroupVersion.Group},
							APIVersions: []string{"*"}, Resources: []string{"wechatauthorizers"}},
					}}}},
				Validations: []admissionregistrationv1.Validation{{Expression: "false", Message: "no WeChatAuthorizers here", Reason: &forbidden}},
			},
		}
		Expect(k8sClient.Create(ctx, policy)).To(Succeed())
		binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName: policy.Name, ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
				MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
					MatchLabels: map[string]string{"kubernetes.io/metadata.name": w.ns}}},
			},
		}
		Expect(k8sClient.Create(ctx, binding)).To(Succeed())
		DeferCleanup(func() {
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, binding))).To(Succeed())
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, policy))).To(Succeed())
		})
		Eventually(func() error { // the policy takes effect asynchronously
			probe := wechatv1alpha1.NewAutoCreatedAuthorizer(w.component(), "wx00000000000000ff")
			probe.Name = "probe"
			err := k8sClient.Create(ctx, probe)
			if err == nil {
				Expect(k8sClient.Delete(ctx, probe)).To(Succeed())
			}
			if !apierrors.IsForbidden(err) {
				return fmt.Errorf("the policy does not refuse creates yet: %w", err)
			}
			return nil
		}).Should(Succeed())
		discover("initial")
		w.reconcile()
		Expect(listCalls()).To(Equal(1))
		cond := discovered()
		Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		Expect(cond.Reason).To(Equal(wechatv1alpha1.ReasonDiscoveryCreateFailed))
		Expect(cond.Message).To(ContainSubstring("no WeChatAuthorizers here"))
		Expect(cond.Message).To(ContainSubstring("ResourceQuota"))
		d := w.component().Status.Discovery
		Expect(d.FailedAttempts).To(BeEquivalentTo(1))
		Expect(d.RetryAt).NotTo(BeNil())
		first := d.RetryAt.Sub(w.clock.Now())
		Expect(first).To(BeNumerically(">", time.Second))

		By("not reading the list again on 20 wake-ups before retryAt")
		for i := range 20 {
			wake(i)
		}
		Expect(listCalls()).To(Equal(1))

		By("reading it once at retryAt, and backing off longer")
		w.clock.Step(first + time.Second)
		wake(100)
		wake(101)
		Expect(listCalls()).To(Equal(2))
		d = w.component().Status.Discovery
		Expect(d.FailedAttempts).To(BeEquivalentTo(2))
		Expect(d.RetryAt.Sub(w.clock.Now())).To(BeNumerically(">", first))

		By("completing once the policy is gone, the earlier state Secrets reused")
		Expect(k8sClient.Delete(ctx, binding)).To(Succeed())
		Eventually(func() error {
			probe := wechatv1alpha1.NewAutoCreatedAuthorizer(w.component(), "wx00000000000000ff")
			probe.Name = "probe"
			err := k8sClient.Create(ctx, probe)
			if err == nil {
				Expect(k8sClient.Delete(ctx, probe)).To(Succeed())
			}
			return err
		}).Should(Succeed())
		w.clock.Step(d.RetryAt.Sub(w.clock.Now()) + time.Second)
		w.reconcile()
		d = w.component().Status.Discovery
		Expect(d.CompletedAt).NotTo(BeNil())
		Expect(d.Created).To(BeEquivalentTo(2))
		Expect(listCalls()).To(Equal(3))
	})

	It("reads the next page only after the pause, whatever wakes the component", func() {
		platformReady()
		seed(501)
		discover("initial")
		w.reconcile()
		Expect(listCalls()).To(Equal(1))
		for i := range 5 {
			wake(i)
		}
		Expect(listCalls()).To(Equal(1), "no page before discoveryPagePause has passed")
		w.clock.Step(discoveryPagePause)
		w.reconcile()
		Expect(listCalls()).To(Equal(2))
		Expect(w.component().Status.Discovery.CompletedAt).NotTo(BeNil())
	})

	It("writes start page answers before it reads a discovery page", func() {
		platformReady(enablePage)
		seed(3)
		discover("initial")
		w.addLinkRequest("request-0123456789ab", w.clock.Now())
		result := w.reconcile()
		reqs := w.component().Status.AuthorizeLinkRequests
		Expect(reqs).To(HaveLen(1))
		Expect(reqs[0].AnsweredAt).NotTo(BeNil(), "the answer is in status after this reconcile")
		Expect(listCalls()).To(Equal(0), "the page waits for the next reconcile")
		Expect(result.RequeueAfter).To(BeNumerically(">", 0))
		Expect(result.RequeueAfter).To(BeNumerically("<=", time.Second))
		w.reconcile()
		Expect(listCalls()).To(Equal(1))
		Expect(w.component().Status.Discovery.CompletedAt).NotTo(BeNil())
	})

	It("neither uses nor overwrites a <name>-state Secret it did not write", func() {
		platformReady()
		ids := seed(2)
		planted := func(id string, labelled bool) *corev1.Secret {
			name := wechatv1alpha1.AutoCreatedAuthorizerName("platform", id)
			s := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name + "-state", Namespace: w.ns},
				StringData: map[string]string{"appid": id, wechatv1alpha1.SecretKeyRefreshToken: "planted-refresh-token"},
			}
			if labelled {
				// Our labels, but controlled by something else.
				owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "someone-" + id, Namespace: w.ns}}
				Expect(k8sClient.Create(ctx, owner)).To(Succeed())
				s.Labels = map[string]string{wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByValue, wechatv1alpha1.LabelAuthorizer: name}
				t := true
				s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: &t}}
			}
			Expect(k8sClient.Create(ctx, s)).To(Succeed())
			return s
		}
		unlabelled, foreign := planted(ids[0], false), planted(ids[1], true)
		discover("initial")
		w.reconcile()
		d := w.component().Status.Discovery
		Expect(d.CompletedAt).NotTo(BeNil())
		Expect(d.StateSecretConflicts).To(BeEquivalentTo(2))
		Expect(d.Created).To(BeEquivalentTo(0))
		cond := discovered()
		Expect(cond.Status).To(Equal(metav1.ConditionFalse))
		Expect(cond.Reason).To(Equal(wechatv1alpha1.ReasonStateSecretsNotOurs))
		Expect(cond.Message).To(ContainSubstring("2 got no WeChatAuthorizer"))
		for _, s := range []*corev1.Secret{unlabelled, foreign} {
			after := w.secret(s.Name)
			Expect(after.ResourceVersion).To(Equal(s.ResourceVersion), "the planted Secret %s is not written", s.Name)
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: w.ns, Name: s.Name[:len(s.Name)-len("-state")]}, &wechatv1alpha1.WeChatAuthorizer{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no WeChatAuthorizer for an account whose state Secret is not ours: %v", err)
		}

		By("an operator-labelled authorizer not taking a refresh token from them either")
		for _, id := range ids {
			a := wechatv1alpha1.NewAutoCreatedAuthorizer(w.component(), id)
			Expect(k8sClient.Create(ctx, a)).To(Succeed())
			w.reconcileAuthorizer(a.Name)
		}
		Expect(w.sim.Calls(wxapi.APIAuthorizerToken, testComponentAppID)).To(Equal(0),
			"no api_authorizer_token call with the planted refresh token")
		for _, s := range []*corev1.Secret{unlabelled, foreign} {
			Expect(w.secret(s.Name).ResourceVersion).To(Equal(s.ResourceVersion), "the planted Secret %s is not written", s.Name)
		}
	})
})
