/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

const seededAuthorizer = "shop"

// seededAccount is an account as api_get_authorizer_info describes it.
var seededAccount = wxsim.AuthorizerSeed{
	ComponentAppID: testComponentAppID, AppID: testAuthorizerAppID, Authorized: true,
	NickName: "Seaside Bakery", HeadImg: "http://wx.qlogo.cn/mmopen/bakery/0", ServiceType: 2, VerifyType: 0,
	UserName: "gh_eb5e3a772040", PrincipalName: "Seaside Bakery Ltd.", Alias: "seaside_bakery",
	Signature: "Fresh bread every morning", QRCodeURL: "http://mmbiz.qpic.cn/mmbiz/bakery/0",
	Business: wxsim.BusinessInfo{OpenPay: 1, OpenCard: 1},
	FuncInfo: []int{1, 15, 4},
}

// withAccounts seeds the simulator with authorized accounts.
func withAccounts(seeds ...wxsim.AuthorizerSeed) worldOption {
	return func(c *worldConfig) {
		c.simOptions = func(o *wxsim.Options) {
			o.Authorizers = append(o.Authorizers, seeds...)
			o.RotateRefreshTokens = true
		}
	}
}

// readyPlatform gives w a component with a token.
func (w *world) readyPlatform(mutate ...func(*wechatv1alpha1.WeChatComponent)) {
	w.createComponent(mutate...)
	w.reconcile()
	w.pushTicket()
	w.reconcile()
	Expect(w.tokenSecret()).NotTo(BeNil())
}

// applyAuthorizer creates a WeChatAuthorizer as GitOps would (its refresh token is then
// recovered from api_get_authorizer_list) and reconciles it once.
func (w *world) applyAuthorizer(name, appID string) {
	Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns},
		Spec: wechatv1alpha1.WeChatAuthorizerSpec{
			ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: appID,
		},
	})).To(Succeed())
	w.reconcileAuthorizer(name)
	Expect(condition(w.authorizer(name).Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
}

func sha256Prefix(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

var _ = Describe("the token Secret's metadata", func() {
	var w *world
	AfterEach(func() { w.close() })

	It("applies the template, keeps what others put there, and removes a template key dropped from spec", func() {
		w = newWorld()
		w.readyPlatform(func(c *wechatv1alpha1.WeChatComponent) {
			c.Spec.TokenSecret.Labels = map[string]string{"team": "payments", "tier": "gold"}
			c.Spec.TokenSecret.Annotations = map[string]string{"reloader.stakater.com/match": "true", "note": "hello"}
		})
		s := w.tokenSecret()
		Expect(s.Labels).To(HaveKeyWithValue("team", "payments"))
		Expect(s.Labels).To(HaveKeyWithValue("tier", "gold"))
		Expect(s.Annotations).To(HaveKeyWithValue("reloader.stakater.com/match", "true"))
		Expect(s.Annotations).To(HaveKeyWithValue("note", "hello"))

		By("another tool labelling and annotating the Secret")
		s.Labels["argocd.argoproj.io/instance"] = "payments"
		s.Annotations["replicator.v1.mittwald.de/replicate-to"] = "apps"
		Expect(k8sClient.Update(ctx, s)).To(Succeed())

		By("a refresh keeping them")
		w.clock.SetTime(w.component().Status.RefreshAt.Time)
		w.reconcile()
		Expect(w.tokenCalls()).To(Equal(2))
		s = w.tokenSecret()
		Expect(s.Labels).To(HaveKeyWithValue("argocd.argoproj.io/instance", "payments"))
		Expect(s.Annotations).To(HaveKeyWithValue("replicator.v1.mittwald.de/replicate-to", "apps"))
		Expect(s.Labels).To(HaveKeyWithValue(wechatv1alpha1.LabelManagedBy, wechatv1alpha1.ManagedByValue))

		By("a template key removed from spec, another changed")
		c := w.component()
		c.Spec.TokenSecret.Labels = map[string]string{"team": "billing"}
		c.Spec.TokenSecret.Annotations = map[string]string{"note": "hello"}
		Expect(k8sClient.Update(ctx, c)).To(Succeed())
		w.reconcile()
		Expect(w.tokenCalls()).To(Equal(2), "metadata is kept in line without a WeChat call")
		s = w.tokenSecret()
		Expect(s.Labels).To(HaveKeyWithValue("team", "billing"))
		Expect(s.Labels).NotTo(HaveKey("tier"))
		Expect(s.Annotations).NotTo(HaveKey("reloader.stakater.com/match"))
		Expect(s.Annotations).To(HaveKeyWithValue("note", "hello"))
		Expect(s.Labels).To(HaveKeyWithValue("argocd.argoproj.io/instance", "payments"), "others' keys survive")
		Expect(s.Annotations).To(HaveKeyWithValue("replicator.v1.mittwald.de/replicate-to", "apps"))

		By("the whole template removed")
		c = w.component()
		c.Spec.TokenSecret.Labels, c.Spec.TokenSecret.Annotations = nil, nil
		Expect(k8sClient.Update(ctx, c)).To(Succeed())
		w.reconcile()
		s = w.tokenSecret()
		Expect(s.Labels).NotTo(HaveKey("team"))
		Expect(s.Annotations).NotTo(HaveKey("note"))
		Expect(s.Annotations).NotTo(HaveKey(wechatv1alpha1.AnnotationTemplateKeys))
		Expect(s.Labels).To(HaveKeyWithValue("argocd.argoproj.io/instance", "payments"))
		Expect(s.Annotations).To(HaveKey(wechatv1alpha1.AnnotationTokenHash))
	})

	It("changes token-hash exactly when the token changes", func() {
		w = newWorld()
		w.readyPlatform()
		first := w.tokenSecret()
		Expect(first.Annotations).To(HaveKeyWithValue(wechatv1alpha1.AnnotationTokenHash, sha256Prefix(string(first.Data["access_token"]))))

		By("a no-op reconcile writing nothing")
		w.clock.Step(10 * time.Minute)
		w.pushTicket()
		w.reconcile()
		again := w.tokenSecret()
		Expect(again.ResourceVersion).To(Equal(first.ResourceVersion))
		Expect(again.Annotations[wechatv1alpha1.AnnotationTokenHash]).To(Equal(first.Annotations[wechatv1alpha1.AnnotationTokenHash]))

		By("a refresh changing it to the new token's")
		w.clock.SetTime(w.component().Status.RefreshAt.Time)
		w.reconcile()
		refreshed := w.tokenSecret()
		token := string(refreshed.Data["access_token"])
		Expect(token).NotTo(Equal(string(first.Data["access_token"])))
		Expect(refreshed.Annotations).To(HaveKeyWithValue(wechatv1alpha1.AnnotationTokenHash, sha256Prefix(token)))
		Expect(refreshed.Annotations[wechatv1alpha1.AnnotationTokenHash]).NotTo(Equal(first.Annotations[wechatv1alpha1.AnnotationTokenHash]))
	})
})

var _ = Describe("authorizer info in status", func() {
	var w *world
	AfterEach(func() { w.close() })

	It("maps api_get_authorizer_info of an official account and of a mini program", func() {
		mini := wxsim.AuthorizerSeed{ComponentAppID: testComponentAppID, AppID: "wx99aa88bb77cc66dd", Authorized: true,
			NickName: "Bakery Orders", MiniProgram: true, ServiceType: 0, VerifyType: 0, UserName: "gh_0123456789ab",
			Signature: "Order bread ahead"}
		subscription := wxsim.AuthorizerSeed{ComponentAppID: testComponentAppID, AppID: "wx11aa22bb33cc44dd", Authorized: true,
			NickName: "Bakery News", ServiceType: 0, VerifyType: -1}
		w = newWorld(withAccounts(seededAccount, mini, subscription))
		w.readyPlatform()
		w.applyAuthorizer(seededAuthorizer, testAuthorizerAppID)
		w.applyAuthorizer("orders", mini.AppID)
		w.applyAuthorizer("news", subscription.AppID)

		info := w.authorizer(seededAuthorizer).Status.Info
		Expect(info).NotTo(BeNil())
		Expect(info.NickName).To(Equal("Seaside Bakery"))
		Expect(info.HeadImg).To(Equal("http://wx.qlogo.cn/mmopen/bakery/0"))
		Expect(*info.ServiceType).To(Equal(int32(2)))
		Expect(*info.VerifyType).To(Equal(int32(0)))
		Expect(info.UserName).To(Equal("gh_eb5e3a772040"))
		Expect(info.PrincipalName).To(Equal("Seaside Bakery Ltd."))
		Expect(info.Alias).To(Equal("seaside_bakery"))
		Expect(info.Signature).To(Equal("Fresh bread every morning"))
		Expect(info.QRCodeURL).To(Equal("http://mmbiz.qpic.cn/mmbiz/bakery/0"))
		Expect(*info.BusinessInfo).To(Equal(wechatv1alpha1.BusinessInfo{OpenPay: true, OpenCard: true}))
		Expect(info.FuncInfo).To(ConsistOf(int32(1), int32(15), int32(4)))
		Expect(info.MiniProgram).To(BeFalse())
		Expect(info.UpdatedAt.Time).To(BeTemporally("==", w.clock.Now().Truncate(time.Second)))

		orders := w.authorizer("orders").Status.Info
		Expect(orders.MiniProgram).To(BeTrue())
		Expect(orders.Signature).To(Equal("Order bread ahead"))
		Expect(*orders.ServiceType).To(Equal(int32(0)))
		news := w.authorizer("news").Status.Info
		Expect(news.MiniProgram).To(BeFalse(), "a subscription account has service type 0 too, and is no mini program")
		Expect(*news.ServiceType).To(Equal(int32(0)))
		Expect(*news.VerifyType).To(Equal(int32(-1)))
	})
})

var _ = Describe("the refresh token written before the token Secret", func() {
	var w *world
	AfterEach(func() { w.close() })

	It("keeps a rotated refresh token when the API server refuses the token Secret write after it", func() {
		w = newWorld(withAccounts(seededAccount))
		w.readyPlatform()
		w.applyAuthorizer(seededAuthorizer, testAuthorizerAppID)
		listCalls := w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID)
		before := string(w.secret(seededAuthorizer + "-state").Data["refresh_token"])
		servedBefore := string(w.secret(seededAuthorizer + "-token").Data["access_token"])

		By("the API server refusing the next token Secret write, whatever comes first")
		inner, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		var refused, stateWrites atomic.Int32
		w.authz.Client = interceptor.NewClient(inner, interceptor.Funcs{
			Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
				if _, ok := obj.(*corev1.Secret); ok {
					switch obj.GetName() {
					case seededAuthorizer + "-token":
						if refused.Add(1) == 1 {
							return apierrors.NewServiceUnavailable("injected: etcd is unavailable")
						}
					case seededAuthorizer + "-state":
						stateWrites.Add(1)
					}
				}
				return c.Update(ctx, obj, opts...)
			},
		})
		w.clock.SetTime(w.authorizer(seededAuthorizer).Status.RefreshAt.Time)
		_, err = w.authz.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: w.ns, Name: seededAuthorizer}})
		Expect(err).To(HaveOccurred(), "the token Secret write failed")
		Expect(refused.Load()).To(Equal(int32(1)))

		By("the new refresh token being persisted, the old token still served")
		current, ok := w.sim.RefreshToken(testComponentAppID, testAuthorizerAppID)
		Expect(ok).To(BeTrue())
		Expect(current).NotTo(Equal(before), "WeChat rotated the refresh token")
		Expect(stateWrites.Load()).To(Equal(int32(1)))
		Expect(string(w.secret(seededAuthorizer + "-state").Data["refresh_token"])).To(Equal(current))
		Expect(string(w.secret(seededAuthorizer + "-token").Data["access_token"])).To(Equal(servedBefore))

		By("the retry serving the new token with nothing lost: no recovery from api_get_authorizer_list")
		w.reconcileAuthorizer(seededAuthorizer)
		served := string(w.secret(seededAuthorizer + "-token").Data["access_token"])
		Expect(w.sim.TokenState(served)).To(Equal(0))
		Expect(served).NotTo(Equal(servedBefore))
		Expect(w.sim.Calls(wxapi.APIGetAuthorizerList, testComponentAppID)).To(Equal(listCalls))
		Expect(w.authorizer(seededAuthorizer).Status.FailedAttempts).To(BeZero())
	})
})
