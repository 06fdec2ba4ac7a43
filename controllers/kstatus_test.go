/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	lua "github.com/yuin/gopher-lua"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
)

// What a GitOps tool makes of the objects the controllers write: kstatus (Flux, kpt,
// cli-utils' "wait") and Argo CD with the health check of config/argocd/health.lua. Both
// read the very objects the API server serves, in each state of a resource's life.

// argoHealthScript is the Argo CD health check that docs/monitoring.md shows.
var argoHealthScript = filepath.Join("..", "config", "argocd", "health.lua")

// health is what the two tools say about one object.
type health struct {
	kstatus     status.Status
	kstatusMsg  string
	argo        string
	argoMessage string
}

// served fetches an object as the API server serves it, as a GitOps tool would.
func served(kind string, key types.NamespacedName) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(wechatv1alpha1.GroupVersion.WithKind(kind))
	Expect(k8sClient.Get(ctx, key, u)).To(Succeed())
	return u
}

// healthOf runs kstatus and the Argo CD Lua check over u.
func healthOf(u *unstructured.Unstructured) health {
	res, err := status.Compute(u)
	Expect(err).NotTo(HaveOccurred())
	script, err := os.ReadFile(argoHealthScript)
	Expect(err).NotTo(HaveOccurred())
	// Argo CD runs health checks with gopher-lua and only the safe libraries open.
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, open := range []lua.LGFunction{lua.OpenBase, lua.OpenTable, lua.OpenString, lua.OpenMath} {
		L.Push(L.NewFunction(open))
		L.Call(0, 0)
	}
	L.SetGlobal("obj", toLua(L, u.Object))
	Expect(L.DoString(string(script))).To(Succeed())
	hs, ok := L.Get(-1).(*lua.LTable)
	Expect(ok).To(BeTrue(), "the health check returns a table")
	return health{kstatus: res.Status, kstatusMsg: res.Message,
		argo: lua.LVAsString(hs.RawGetString("status")), argoMessage: lua.LVAsString(hs.RawGetString("message"))}
}

// toLua turns decoded JSON into Lua values as Argo CD does: objects and arrays become tables.
func toLua(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case bool:
		return lua.LBool(x)
	case string:
		return lua.LString(x)
	case int64:
		return lua.LNumber(x)
	case float64:
		return lua.LNumber(x)
	case map[string]any:
		t := L.NewTable()
		for k, e := range x {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range x {
			t.Append(toLua(L, e))
		}
		return t
	}
	return lua.LNil
}

// expectHealth checks both tools' verdict on an object, and that the conditions kstatus
// reads agree with each other and with the object's generation.
func expectHealth(kind string, key types.NamespacedName, want status.Status, wantArgo, wantReason string) {
	GinkgoHelper()
	u := served(kind, key)
	h := healthOf(u)
	Expect(h.kstatus).To(Equal(want), "kstatus: %s", h.kstatusMsg)
	Expect(h.argo).To(Equal(wantArgo), "Argo CD: %s", h.argoMessage)
	if wantReason != "" {
		Expect(h.argoMessage).To(HavePrefix(wantReason+":"), "the Argo CD message starts with the reason")
	}
	conds, _, err := unstructured.NestedSlice(u.Object, "status", "conditions")
	Expect(err).NotTo(HaveOccurred())
	trueOnes := map[string]bool{}
	for _, c := range conds {
		m := c.(map[string]any)
		if m["status"] == "True" {
			trueOnes[m["type"].(string)] = true
		}
		if m["type"] == wechatv1alpha1.ConditionReconciling || m["type"] == wechatv1alpha1.ConditionStalled {
			Expect(m["observedGeneration"]).To(Equal(u.GetGeneration()), "%s carries observedGeneration", m["type"])
		}
	}
	Expect(trueOnes[wechatv1alpha1.ConditionReconciling] && trueOnes[wechatv1alpha1.ConditionStalled]).To(BeFalse(),
		"Reconciling and Stalled are never both True")
}

// statusSeries scrapes the manager's status series of namespace ns, as "metric kind/name reason" → value.
func statusSeries(ns string) map[string]float64 {
	GinkgoHelper()
	out := map[string]float64{}
	for _, f := range gatherStatusSeries(k8sClient) {
		for _, m := range f.GetMetric() {
			if labelValue(m, "namespace") != ns || f.GetName() == "wechat_token_expiration_timestamp_seconds" {
				continue
			}
			key := f.GetName() + " " + labelValue(m, "kind") + "/" + labelValue(m, "name")
			if r := labelValue(m, "reason"); r != "" {
				key += " " + r
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

var _ = Describe("health as GitOps tools read it (kstatus, Argo CD)", func() {
	var w *world
	AfterEach(func() { w.close() })
	const comp, authz = wechatv1alpha1.KindWeChatComponent, wechatv1alpha1.KindWeChatAuthorizer

	It("follows a component from waiting for its ticket to current, retrying, stalled and current again", func() {
		w = newWorld()
		w.createComponent()

		By("before the controller looked at it: no status, which kstatus cannot tell from done")
		h := healthOf(served(comp, w.key))
		Expect(h.kstatus).To(Equal(status.CurrentStatus), "kstatus: %s", h.kstatusMsg)
		Expect(h.argo).To(Equal("Progressing"), "the Argo CD check waits for a status")

		By("waiting for the first ticket: in progress")
		w.reconcile()
		expectHealth(comp, w.key, status.InProgressStatus, "Progressing", wechatv1alpha1.ReasonWaitingForTicket)

		By("a token issued: current")
		w.pushTicket()
		w.reconcile()
		expectHealth(comp, w.key, status.CurrentStatus, "Healthy", wechatv1alpha1.ReasonTokenIssued)
		Expect(statusSeries(w.ns)).To(Equal(map[string]float64{
			"wechat_verify_ticket_timestamp_seconds /platform": float64(w.component().Status.VerifyTicket.CreateTime.Unix()),
		}), "no failure series while all is well")
		rv := w.component().ResourceVersion
		w.reconcile()
		Expect(w.component().ResourceVersion).To(Equal(rv), "a reconcile with nothing new writes nothing")

		By("a spec change the controller has not seen yet: in progress, then current")
		c := w.component()
		c.Spec.TokenSecret.Labels = map[string]string{"team": "payments"}
		Expect(k8sClient.Update(ctx, c)).To(Succeed())
		expectHealth(comp, w.key, status.InProgressStatus, "Progressing", "")
		w.reconcile()
		expectHealth(comp, w.key, status.CurrentStatus, "Healthy", wechatv1alpha1.ReasonTokenIssued)

		By("a refresh failing on a busy WeChat, the old token still served: in progress")
		w.sim.AddFault(wxsim.Fault{API: wxapi.APIComponentToken, ErrCode: -1, Count: 1 << 30})
		w.clock.SetTime(w.component().Status.RefreshAt.Time)
		w.reconcile()
		Expect(condition(w.component().Status.Conditions, wechatv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
		expectHealth(comp, w.key, status.InProgressStatus, "Progressing", wechatv1alpha1.ReasonWeChatBusy)
		Expect(statusSeries(w.ns)).To(HaveKeyWithValue("wechat_refresh_failures WeChatComponent/platform WeChatBusy", 1.0))

		By("the AppSecret replaced by a wrong one: failed, though the old token is still served")
		w.sim.ClearFaults()
		w.setAppSecret("a-wrong-app-secret-0123456789abc")
		w.reconcile()
		Expect(w.component().Status.LastFailureReason).To(Equal(wechatv1alpha1.ReasonInvalidAppSecret))
		expectHealth(comp, w.key, status.FailedStatus, "Degraded", wechatv1alpha1.ReasonInvalidAppSecret)
		series := statusSeries(w.ns)
		Expect(series).To(HaveKeyWithValue("wechat_resource_stalled WeChatComponent/platform InvalidAppSecret", 1.0))
		Expect(series).To(HaveKeyWithValue("wechat_refresh_failures WeChatComponent/platform InvalidAppSecret", 2.0))

		By("the AppSecret fixed: current again")
		w.setAppSecret(testAppSecret)
		w.reconcile()
		expectHealth(comp, w.key, status.CurrentStatus, "Healthy", wechatv1alpha1.ReasonTokenIssued)
		Expect(statusSeries(w.ns)).To(HaveLen(1), "the failure series are gone")
	})

	It("shows a component whose first token call fails as in progress on a transient error, failed on rejected credentials", func() {
		w = newWorld()
		w.createComponent()
		w.reconcile()
		w.sim.AddFault(wxsim.Fault{API: wxapi.APIComponentToken, ErrCode: -1})
		w.pushTicket()
		w.reconcile()
		Expect(w.tokenSecret()).To(BeNil())
		expectHealth(comp, w.key, status.InProgressStatus, "Progressing", wechatv1alpha1.ReasonWeChatBusy)

		By("40001 from api_component_token after the backoff: the credentials are wrong")
		w.sim.AddFault(wxsim.Fault{API: wxapi.APIComponentToken, ErrCode: wxapi.CodeInvalidCredential, Count: 1 << 30})
		w.clock.SetTime(w.component().Status.RefreshAt.Time)
		w.reconcile()
		expectHealth(comp, w.key, status.FailedStatus, "Degraded", wechatv1alpha1.ReasonCredentialsRejected)
	})

	It("follows authorizers: waiting for the component, current, never authorized, revoked", func() {
		w = newWorld(withAccounts(seededAccount))
		w.createComponent()
		w.reconcile()
		shop := types.NamespacedName{Namespace: w.ns, Name: seededAuthorizer}
		stranger := types.NamespacedName{Namespace: w.ns, Name: "stranger"}
		for _, a := range []struct {
			key   types.NamespacedName
			appID string
		}{{shop, testAuthorizerAppID}, {stranger, "wx00000000000000ff"}} {
			Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
				ObjectMeta: metav1.ObjectMeta{Name: a.key.Name, Namespace: w.ns},
				Spec: wechatv1alpha1.WeChatAuthorizerSpec{
					ComponentRef: wechatv1alpha1.LocalObjectReference{Name: "platform"}, AppID: a.appID,
				},
			})).To(Succeed())
		}

		By("the component has no token yet: in progress")
		w.reconcileAuthorizer(shop.Name)
		expectHealth(authz, shop, status.InProgressStatus, "Progressing", wechatv1alpha1.ReasonComponentNotReady)

		By("the account's refresh token recovered from WeChat: current")
		w.pushTicket()
		w.reconcile()
		w.reconcileAuthorizer(shop.Name)
		expectHealth(authz, shop, status.CurrentStatus, "Healthy", wechatv1alpha1.ReasonTokenIssued)

		By("an account that never authorized: failed, and looking again writes nothing")
		w.reconcileAuthorizer(stranger.Name)
		expectHealth(authz, stranger, status.FailedStatus, "Degraded", wechatv1alpha1.ReasonNotAuthorized)
		Expect(statusSeries(w.ns)).To(HaveKeyWithValue("wechat_resource_stalled WeChatAuthorizer/stranger NotAuthorized", 1.0))
		rv := w.authorizer(stranger.Name).ResourceVersion
		w.clock.Step(15 * time.Minute)
		w.reconcileAuthorizer(stranger.Name)
		Expect(w.authorizer(stranger.Name).ResourceVersion).To(Equal(rv))

		By("the account revoking its authorization: failed")
		_, err := w.sim.Revoke(ctx, testComponentAppID, testAuthorizerAppID)
		Expect(err).NotTo(HaveOccurred())
		w.reconcileAuthorizer(shop.Name)
		expectHealth(authz, shop, status.FailedStatus, "Degraded", wechatv1alpha1.ReasonUnauthorized)
	})
})
