/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"bytes"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/refreshtokens"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// `kubectl wechat export` and `kubectl wechat import` (cmd/kubectl-wechat) are thin wrappers
// of internal/refreshtokens; here they run against the real API server and reconciler.
var _ = Describe("kubectl wechat export and import of refresh tokens", func() {
	var w *world
	AfterEach(func() { w.close() })

	It("brings an account back from its exported refresh token, without api_query_auth", func() {
		w = newWorld()
		w.readyPlatform(func(c *wechatv1alpha1.WeChatComponent) { c.Spec.Authorizers.AutoCreate = true })
		res, err := w.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: testComponentAppID, AuthorizerAppID: testAuthorizerAppID})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Push.Delivered).To(BeTrue())
		w.reconcile() // takes the code: api_query_auth, and autoCreate makes the authorizer
		w.reconcileAuthorizer(autoName)
		Expect(condition(w.authorizer(autoName).Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		// An account that never authorized has no refresh token to export.
		Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
			ObjectMeta: metav1.ObjectMeta{Name: "never", Namespace: w.ns},
			Spec: wechatv1alpha1.WeChatAuthorizerSpec{
				ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: "wx00000000000000ff",
			},
		})).To(Succeed())

		By("exporting, through the file format")
		var report, file bytes.Buffer
		lines, err := refreshtokens.Export(ctx, k8sClient, w.ns, "platform", &report)
		Expect(err).NotTo(HaveOccurred())
		refreshToken, _ := w.sim.RefreshToken(testComponentAppID, testAuthorizerAppID)
		Expect(lines).To(Equal([]refreshtokens.Line{{AppID: testAuthorizerAppID, RefreshToken: refreshToken}}))
		Expect(report.String()).To(ContainSubstring("skipped WeChatAuthorizer never (wx00000000000000ff): no refresh token yet"))
		Expect(refreshtokens.Format(&file, "backup", lines)).To(Succeed())
		parsed, err := refreshtokens.Parse(&file)
		Expect(err).NotTo(HaveOccurred())

		By("losing the authorizers and their Secrets, as a new cluster would not have them")
		Expect(k8sClient.Delete(ctx, w.authorizer(autoName))).To(Succeed())
		Expect(k8sClient.Delete(ctx, w.authorizer("never"))).To(Succeed())
		// envtest runs no garbage collector: delete what the owner references would.
		Expect(k8sClient.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(w.ns),
			client.HasLabels{wechatv1alpha1.LabelAuthorizer})).To(Succeed())
		Expect(w.secret(wechatv1alpha1.StateSecretName(autoName))).To(BeNil())
		queryAuth := w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)
		listCalls := w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID)
		Expect(queryAuth).To(Equal(1))

		By("importing")
		var out bytes.Buffer
		sum, err := refreshtokens.Import(ctx, k8sClient, w.component(), parsed, false, &out)
		Expect(err).NotTo(HaveOccurred())
		Expect(sum).To(Equal(refreshtokens.Summary{Created: 1}))
		Expect(out.String()).NotTo(ContainSubstring(refreshToken))
		w.reconcileAuthorizer(autoName)
		a := w.authorizer(autoName)
		Expect(condition(a.Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(queryAuth), "no new authorization")
		Expect(w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID)).To(Equal(listCalls), "imported, not looked up")
		current, _ := w.sim.RefreshToken(testComponentAppID, testAuthorizerAppID)
		Expect(string(w.secret(wechatv1alpha1.StateSecretName(autoName)).Data[wechatv1alpha1.SecretKeyRefreshToken])).To(Equal(current))
		Expect(w.secret(a.Status.TokenSecretName).Data).To(HaveKey(wechatv1alpha1.SecretKeyAccessToken))

		By("importing again: the account is skipped")
		out.Reset()
		sum, err = refreshtokens.Import(ctx, k8sClient, w.component(), parsed, false, &out)
		Expect(err).NotTo(HaveOccurred())
		Expect(sum).To(Equal(refreshtokens.Summary{Skipped: 1}))
	})
})
