/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/event"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
	"github.com/wechat-operator/wechat-operator/internal/keyring"
	"github.com/wechat-operator/wechat-operator/internal/refresh"
	"github.com/wechat-operator/wechat-operator/internal/wxapi"
	"github.com/wechat-operator/wechat-operator/internal/wxsim"
	receiver "github.com/wechat-operator/wechat-operator/webhook-receiver"
)

// testApp is an in-cluster app that messages are forwarded to.
type testApp struct {
	srv      *httptest.Server
	mu       sync.Mutex
	received []forwardedMessage
}

type forwardedMessage struct {
	header http.Header
	body   []byte
}

// newTestApp answers every message with a text reply echoing it, after hold returns.
func newTestApp(hold func(*http.Request)) *testApp {
	a := &testApp{}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.received = append(a.received, forwardedMessage{header: r.Header.Clone(), body: body})
		a.mu.Unlock()
		if hold != nil {
			hold(r)
		}
		var m struct {
			ToUserName, FromUserName, Content string
		}
		_ = xml.Unmarshal(body, &m)
		fmt.Fprintf(w, "<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName>"+
			"<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[echo %s]]></Content></xml>",
			m.FromUserName, m.ToUserName, m.Content)
	}))
	return a
}

func (a *testApp) messages() []forwardedMessage {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]forwardedMessage(nil), a.received...)
}

var _ = Describe("Messages of authorized accounts", func() {
	var w *world
	AfterEach(func() { w.close() })

	// platformReady gives the world a component with a token, and points the simulator's
	// 消息与事件接收URL at the receiver.
	platformReady := func(mutate ...func(*wechatv1alpha1.WeChatComponent)) {
		w = newWorld()
		w.createComponent(mutate...)
		w.reconcile()
		w.pushTicket()
		w.reconcile()
		Expect(w.tokenSecret()).NotTo(BeNil())
		Expect(w.sim.SetMessageURL(testComponentAppID,
			fmt.Sprintf("%s/wechat/%s/%s/messages/$APPID$", w.recvServer.URL, w.ns, w.key.Name))).To(Succeed())
	}
	drainEvents := func() string {
		var recorded []string
		for len(w.recorder.Events) > 0 {
			recorded = append(recorded, <-w.recorder.Events)
		}
		return strings.Join(recorded, "\n")
	}
	// bindAccount gives the authorizer name the original id of appID that its controller reads
	// from api_get_authorizer_info (unless it already has one): the receiver forwards only
	// messages whose ToUserName is the URL account's original id.
	bindAccount := func(name, appID string) {
		a := w.authorizer(name)
		if a.Status.Info != nil && a.Status.Info.UserName != "" {
			return
		}
		userName := "gh_" + strings.TrimPrefix(appID, "wx")
		userName = userName[:min(len(userName), 15)] // the simulator's default for an account it was not told about
		patch := client.MergeFrom(a.DeepCopy())
		a.Status.Info = &wechatv1alpha1.AuthorizerInfo{UserName: userName}
		Expect(k8sClient.Status().Patch(ctx, a, patch)).To(Succeed())
	}
	officialAccount := func() wxsim.ReleaseTestAccount {
		for _, a := range receiver.ReleaseTestAccounts {
			if a.AppID == "wx570bc396a51b8ff8" {
				return wxsim.ReleaseTestAccount{AppID: a.AppID, UserName: a.UserName}
			}
		}
		Fail("the official test account is not in receiver.ReleaseTestAccounts")
		return wxsim.ReleaseTestAccount{}
	}

	Context("WeChat's 全网发布 test", func() {
		It("passes end to end for every published test account, answering each code once", func() {
			platformReady()
			sent := 0
			for _, account := range receiver.ReleaseTestAccounts {
				if account.AppID == "" {
					continue
				}
				By("the test run as " + account.UserName + " (" + account.Source + ")")
				rt, err := w.sim.StartReleaseTest(ctx, testComponentAppID, wxsim.ReleaseTestAccount{AppID: account.AppID, UserName: account.UserName})
				Expect(err).NotTo(HaveOccurred(), "the passive replies are what the test expects")

				By("the receiver leaving the code for the manager, which has not acted yet")
				pending := w.component().Status.PendingTestReplies
				Expect(pending).To(HaveLen(1))
				Expect(pending[0].Code).To(Equal(rt.Code))
				Expect(pending[0].ToUser).To(Equal(rt.User))
				Expect(w.sim.CustomMessages()).To(HaveLen(sent))

				By("the manager exchanging the code and sending the customer-service message")
				w.clock.Step(2 * time.Second)
				w.reconcile()
				m, err := w.sim.CheckReleaseTest(rt, 5*time.Second)
				Expect(err).NotTo(HaveOccurred())
				Expect(m.Content).To(Equal(rt.Code + "_from_api"))
				Expect(m.ToUser).To(Equal(rt.User))
				Expect(m.SentAt).To(Equal(rt.CodeSentAt.Add(2 * time.Second)))
				sent++
				Expect(w.sim.CustomMessages()).To(HaveLen(sent))
				Expect(w.component().Status.PendingTestReplies).To(BeEmpty())
			}
			Expect(sent).To(Equal(2))

			By("a later reconcile sending nothing again")
			w.reconcile()
			Expect(w.sim.CustomMessages()).To(HaveLen(2))
			Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(2))
			Expect(w.sim.Calls(wxapi.APISendCustomMessage, "wx570bc396a51b8ff8")).To(Equal(1))

			By("keeping codes and tokens out of logs and Events")
			events := drainEvents()
			Expect(events).To(ContainSubstring(wechatv1alpha1.EventTestReplySent))
			for _, m := range w.sim.CustomMessages() {
				code := strings.TrimSuffix(m.Content, "_from_api")
				Expect(w.logs.String()).NotTo(ContainSubstring(code))
				Expect(events).NotTo(ContainSubstring(code))
				Expect(w.logs.String()).NotTo(ContainSubstring(m.ToUser), "openids are not logged either")
			}
			Expect(w.logs.String()).NotTo(ContainSubstring(string(w.tokenSecret().Data["access_token"])))
		})

		It("retries a send WeChat was too busy for, without exchanging the code twice", func() {
			platformReady()
			rt, err := w.sim.StartReleaseTest(ctx, testComponentAppID, officialAccount())
			Expect(err).NotTo(HaveOccurred())
			w.sim.AddFault(wxsim.Fault{API: wxapi.APISendCustomMessage, ErrCode: -1})

			result := w.reconcile()
			Expect(w.sim.CustomMessages()).To(BeEmpty())
			Expect(w.component().Status.PendingTestReplies).To(HaveLen(1), "kept for the retry")
			// The reply backs off like any failed call: 5 s less the pinned jitter's 10 %.
			Expect(result.RequeueAfter).To(Equal(refresh.APIFailure.Delay(1, 0.5)), "back soon, not at the token's refresh time")

			w.clock.Step(result.RequeueAfter)
			w.reconcile()
			_, err = w.sim.CheckReleaseTest(rt, time.Minute)
			Expect(err).NotTo(HaveOccurred())
			Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(1), "the code works once: its token was kept")
			Expect(w.component().Status.PendingTestReplies).To(BeEmpty())
		})

		It("sends a reply once even when the status write after it is lost", func() {
			platformReady()
			// With a WeChatAuthorizer for the account, the exchange's tokens are kept in its
			// state Secret: a second try could send with them, were the reply not remembered.
			account := officialAccount()
			Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
				ObjectMeta: metav1.ObjectMeta{Name: "test-account", Namespace: w.ns},
				Spec: wechatv1alpha1.WeChatAuthorizerSpec{
					ComponentRef: wechatv1alpha1.LocalObjectReference{Name: w.key.Name}, AppID: account.AppID,
				},
			})).To(Succeed())
			rt, err := w.sim.StartReleaseTest(ctx, testComponentAppID, account)
			Expect(err).NotTo(HaveOccurred())

			// The receiver (another writer) wins every race for the status write this time,
			// so even its retries onto the latest object are lost.
			inner, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
			Expect(err).NotTo(HaveOccurred())
			lost := statusAttempts
			w.reconciler.Client = interceptor.NewClient(inner, interceptor.Funcs{
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
					if _, component := obj.(*wechatv1alpha1.WeChatComponent); component && lost > 0 {
						lost--
						return apierrors.NewConflict(schema.GroupResource{Resource: "wechatcomponents"}, obj.GetName(), errors.New("injected"))
					}
					return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
				},
			})
			result := w.reconcile()
			Expect(result.RequeueAfter).To(BeNumerically(">", 0), "a lost status write is retried")
			Expect(w.component().Status.PendingTestReplies).To(HaveLen(1), "the status still lists the reply")
			refreshToken, ok := w.sim.RefreshToken(testComponentAppID, account.AppID)
			Expect(ok).To(BeTrue())
			Expect(string(w.secret("test-account-state").Data["refresh_token"])).To(Equal(refreshToken),
				"the exchange's refresh token is kept for the account's WeChatAuthorizer")
			w.reconcile()
			Expect(w.component().Status.PendingTestReplies).To(BeEmpty())
			_, err = w.sim.CheckReleaseTest(rt, time.Minute)
			Expect(err).NotTo(HaveOccurred(), "sent exactly once")
		})

		It("uses the account's stored token when its WeChatAuthorizer already spent the code", func() {
			platformReady(func(c *wechatv1alpha1.WeChatComponent) { c.Spec.Authorizers.AutoCreate = true })
			account := officialAccount()
			Expect(w.sim.PutAuthorizer(wxsim.AuthorizerSeed{ComponentAppID: testComponentAppID, AppID: account.AppID, UserName: account.UserName})).To(Succeed())
			res, err := w.sim.Authorize(ctx, wxsim.AuthorizeRequest{ComponentAppID: testComponentAppID, AuthorizerAppID: account.AppID})
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Push.Delivered).To(BeTrue())
			name := wechatv1alpha1.AutoCreatedAuthorizerName(w.key.Name, account.AppID)
			w.reconcile() // the manager exchanges the pushed code and creates the account's authorizer
			Expect(w.component().Status.PendingAuthorizationCodes).To(BeEmpty())
			Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(1), "the code is spent")
			w.reconcileAuthorizer(name)

			reply, err := w.sim.SendMessage(ctx, wxsim.MessageRequest{ComponentAppID: testComponentAppID, AuthorizerAppID: account.AppID,
				FromUser: "oTestUser0123456789abcdefghi", MsgType: "text", Content: "QUERY_AUTH_CODE:" + res.AuthCode})
			Expect(err).NotTo(HaveOccurred())
			Expect(reply.Empty).To(BeTrue())
			w.reconcile()

			msgs := w.sim.CustomMessages()
			Expect(msgs).To(HaveLen(1))
			Expect(msgs[0].Content).To(Equal(res.AuthCode + "_from_api"))
			Expect(msgs[0].ToUser).To(Equal("oTestUser0123456789abcdefghi"))
			Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(2), "one exchange each; the second was refused")
		})

		It("drops a reply it cannot send, and one that expired, with a Warning", func() {
			platformReady()
			account := officialAccount()
			send := func(code string) {
				reply, err := w.sim.SendMessage(ctx, wxsim.MessageRequest{ComponentAppID: testComponentAppID, AuthorizerAppID: account.AppID,
					MsgType: "text", Content: "QUERY_AUTH_CODE:" + code})
				Expect(err).NotTo(HaveOccurred())
				Expect(reply.Empty).To(BeTrue())
			}
			By("a code WeChat never issued")
			send("queryauthcode@@@never-issued-by-wechat")
			w.reconcile()
			Expect(w.component().Status.PendingTestReplies).To(BeEmpty())
			Expect(drainEvents()).To(ContainSubstring(wechatv1alpha1.EventTestReplyFailed))

			By("a code that waited past its lifetime")
			code, _, err := w.sim.IssueAuthCode(testComponentAppID, account.AppID)
			Expect(err).NotTo(HaveOccurred())
			send(code)
			w.clock.Step(61 * time.Minute)
			w.reconcile()
			Expect(w.component().Status.PendingTestReplies).To(BeEmpty())
			Expect(drainEvents()).To(ContainSubstring("expired before it could be answered"))
			Expect(w.sim.CustomMessages()).To(BeEmpty())
			Expect(w.sim.Calls(wxapi.APIQueryAuth, testComponentAppID)).To(Equal(1), "the expired code was not tried")
		})

		It("answers nothing when the component turns the responder off", func() {
			platformReady(func(c *wechatv1alpha1.WeChatComponent) {
				c.Spec.Messages.TestResponder = wechatv1alpha1.TestResponderDisabled
			})
			_, err := w.sim.StartReleaseTest(ctx, testComponentAppID, officialAccount())
			Expect(err).To(MatchError(ContainSubstring("without a reply")))
			Expect(w.component().Status.PendingTestReplies).To(BeEmpty())
		})

		It("wakes the controller when the receiver records a reply, not on the controller's own writes", func() {
			reply := func(code string) wechatv1alpha1.TestReply { return wechatv1alpha1.TestReply{Code: code} }
			update := func(before, after []wechatv1alpha1.TestReply) bool {
				oldC := &wechatv1alpha1.WeChatComponent{Status: wechatv1alpha1.WeChatComponentStatus{PendingTestReplies: before}}
				newC := &wechatv1alpha1.WeChatComponent{Status: wechatv1alpha1.WeChatComponentStatus{PendingTestReplies: after}}
				return componentChanged.Update(event.UpdateEvent{ObjectOld: oldC, ObjectNew: newC})
			}
			w = newWorld() // for AfterEach
			Expect(update(nil, []wechatv1alpha1.TestReply{reply("a")})).To(BeTrue())
			Expect(update([]wechatv1alpha1.TestReply{reply("a")}, []wechatv1alpha1.TestReply{reply("b")})).To(BeTrue(), "one answered, one new")
			Expect(update([]wechatv1alpha1.TestReply{reply("a"), reply("b")}, []wechatv1alpha1.TestReply{reply("b")})).To(BeFalse())
			Expect(update([]wechatv1alpha1.TestReply{reply("a")}, nil)).To(BeFalse())
		})
	})

	Context("forwarding to apps", func() {
		const (
			componentKey  = "component-default-hmac-key-0123"
			authorizerKey = "shop-account-hmac-key-456789abc"
		)
		keyringData := func() map[string][]byte {
			return w.secret(testKeyringName).Data
		}
		hmacSecret := func(name, value string) {
			Expect(k8sClient.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns,
					Annotations: releasedTo(wechatv1alpha1.KindWeChatComponent+"/*", wechatv1alpha1.KindWeChatAuthorizer+"/*")},
				StringData: map[string]string{"hmacKey": value},
			})).To(Succeed())
		}

		It("forwards through keys the manager projects, per account or by the component's default", func() {
			defaultApp := newTestApp(nil)
			defer defaultApp.srv.Close()
			shopApp := newTestApp(nil)
			defer shopApp.srv.Close()
			platformReady(func(c *wechatv1alpha1.WeChatComponent) {
				c.Spec.Messages.Forward = &wechatv1alpha1.MessageForwarding{URL: defaultApp.srv.URL + "/wechat",
					HMACKeySecretRef: wechatv1alpha1.HMACKeySecretReference{Name: "default-hmac"}}
			})
			By("the manager copying the component's key into the keyring once its Secret exists")
			Expect(keyringData()).NotTo(HaveKey(keyring.ForwardKeyKey(w.ns, w.key.Name)))
			Expect(drainEvents()).To(ContainSubstring(wechatv1alpha1.EventForwardKeyMissing))
			hmacSecret("default-hmac", componentKey)
			w.reconcile()
			Expect(string(keyringData()[keyring.ForwardKeyKey(w.ns, w.key.Name)])).To(Equal(componentKey))

			By("an authorizer with a target of its own")
			w.authz.KeyringNamespace, w.authz.KeyringName = w.ns, testKeyringName
			hmacSecret("shop-hmac", authorizerKey)
			Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
				ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: w.ns},
				Spec: wechatv1alpha1.WeChatAuthorizerSpec{
					ComponentRef: wechatv1alpha1.LocalObjectReference{Name: w.key.Name}, AppID: testAuthorizerAppID,
					Messages: wechatv1alpha1.AuthorizerMessages{Forward: &wechatv1alpha1.MessageForwarding{URL: shopApp.srv.URL,
						HMACKeySecretRef: wechatv1alpha1.HMACKeySecretReference{Name: "shop-hmac"}}},
				},
			})).To(Succeed())
			w.reconcileAuthorizer("shop")
			bindAccount("shop", testAuthorizerAppID)
			Expect(string(keyringData()[keyring.AuthorizerForwardKeyKey(w.ns, "shop")])).To(Equal(authorizerKey))

			By("the shop's message reaching the shop's app, signed, and its reply WeChat, encrypted")
			reply, err := w.sim.SendMessage(ctx, wxsim.MessageRequest{ComponentAppID: testComponentAppID,
				AuthorizerAppID: testAuthorizerAppID, FromUser: "oShopper", MsgType: "text", Content: "where is my parcel"})
			Expect(err).NotTo(HaveOccurred(), "the reply is signed and encrypted with the platform's keys")
			Expect(reply.Content).To(Equal("echo where is my parcel"))
			Expect(reply.ToUserName).To(Equal("oShopper"))
			got := shopApp.messages()
			Expect(got).To(HaveLen(1))
			Expect(string(got[0].body)).To(ContainSubstring("<Content><![CDATA[where is my parcel]]></Content>"))
			Expect(receiver.VerifyForwardSignature([]byte(authorizerKey), got[0].header.Get(receiver.HeaderTimestamp),
				testAuthorizerAppID, got[0].body, got[0].header.Get(receiver.HeaderSignature))).To(BeTrue())
			Expect(defaultApp.messages()).To(BeEmpty())

			By("another account's message reaching the component's default app")
			Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
				ObjectMeta: metav1.ObjectMeta{Name: "cafe", Namespace: w.ns},
				Spec: wechatv1alpha1.WeChatAuthorizerSpec{
					ComponentRef: wechatv1alpha1.LocalObjectReference{Name: w.key.Name}, AppID: "wx00000000000000cc",
				},
			})).To(Succeed())
			bindAccount("cafe", "wx00000000000000cc")
			_, err = w.sim.SendMessage(ctx, wxsim.MessageRequest{ComponentAppID: testComponentAppID,
				AuthorizerAppID: "wx00000000000000cc", MsgType: "event", Event: "subscribe"})
			Expect(err).NotTo(HaveOccurred())
			Expect(defaultApp.messages()).To(HaveLen(1))
			d := defaultApp.messages()[0]
			Expect(receiver.VerifyForwardSignature([]byte(componentKey), d.header.Get(receiver.HeaderTimestamp),
				"wx00000000000000cc", d.body, d.header.Get(receiver.HeaderSignature))).To(BeTrue())

			By("an account without a WeChatAuthorizer reaching no app")
			_, err = w.sim.SendMessage(ctx, wxsim.MessageRequest{ComponentAppID: testComponentAppID,
				AuthorizerAppID: "wx00000000000000dd", MsgType: "text", Content: "hi"})
			Expect(err).NotTo(HaveOccurred())
			Expect(defaultApp.messages()).To(HaveLen(1))
			Expect(shopApp.messages()).To(HaveLen(1))

			By("the keys leaving the keyring with the authorizer and with the component's spec")
			Expect(k8sClient.Delete(ctx, w.authorizer("shop"))).To(Succeed())
			w.reconcileAuthorizer("shop")
			Expect(keyringData()).NotTo(HaveKey(keyring.AuthorizerForwardKeyKey(w.ns, "shop")))
			c := w.component()
			c.Spec.Messages.Forward = nil
			Expect(k8sClient.Update(ctx, c)).To(Succeed())
			w.reconcile()
			Expect(keyringData()).NotTo(HaveKey(keyring.ForwardKeyKey(w.ns, w.key.Name)))
			Expect(keyringData()).To(HaveKey(keyring.TokenKey(w.ns, w.key.Name)), "the platform's own keys stay")

			By("keeping keys and message content out of the logs")
			for _, secret := range []string{componentKey, authorizerKey, "where is my parcel"} {
				Expect(w.logs.String()).NotTo(ContainSubstring(secret))
			}
		})

		It("reads only usable keys, and leaves authorizers' entries to their own pruning", func() {
			w = newWorld()
			hmacSecret("good", componentKey)
			hmacSecret("short", "too-short")
			Expect(k8sClient.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "custom", Namespace: w.ns,
					Annotations: releasedTo(wechatv1alpha1.KindWeChatAuthorizer + "/shop")},
				StringData: map[string]string{"signing": authorizerKey},
			})).To(Succeed())
			read := func(ref wechatv1alpha1.HMACKeySecretReference) (string, string) {
				key, problem, err := readForwardKey(ctx, k8sClient, w.ns, wechatv1alpha1.KindWeChatAuthorizer, "shop",
					&wechatv1alpha1.MessageForwarding{HMACKeySecretRef: ref})
				Expect(err).NotTo(HaveOccurred())
				if problem == nil {
					return string(key), ""
				}
				return string(key), problem.message
			}
			key, problem := read(wechatv1alpha1.HMACKeySecretReference{Name: "good"})
			Expect(key).To(Equal(componentKey))
			Expect(problem).To(BeEmpty())
			key, _ = read(wechatv1alpha1.HMACKeySecretReference{Name: "custom", Key: "signing"})
			Expect(key).To(Equal(authorizerKey))
			for _, ref := range []wechatv1alpha1.HMACKeySecretReference{{Name: "short"}, {Name: "absent"}, {Name: "custom"}} {
				key, problem = read(ref)
				Expect(key).To(BeEmpty(), ref.Name)
				Expect(problem).To(ContainSubstring(ref.Name))
				Expect(problem).NotTo(ContainSubstring("too-short"), "a problem never quotes the key")
			}
			By("a Secret released to another authorizer only")
			other, refused, err := readForwardKey(ctx, k8sClient, w.ns, wechatv1alpha1.KindWeChatAuthorizer, "other",
				&wechatv1alpha1.MessageForwarding{HMACKeySecretRef: wechatv1alpha1.HMACKeySecretReference{Name: "custom", Key: "signing"}})
			Expect(err).NotTo(HaveOccurred())
			Expect(other).To(BeNil())
			Expect(refused.reason).To(Equal(wechatv1alpha1.ReasonSecretNotOptedIn))
			Expect(refused.message).To(ContainSubstring(wechatv1alpha1.AnnotationUsableBy + "=WeChatAuthorizer/other"))

			k := &keyringWriter{client: k8sClient, namespace: w.ns, name: testKeyringName}
			Expect(k.setEntry(ctx, keyring.AuthorizerForwardKeyKey(w.ns, "shop"), []byte(authorizerKey))).To(Succeed())
			Expect(k.setEntry(ctx, keyring.ForwardKeyKey(w.ns, "gone"), []byte(componentKey))).To(Succeed())
			Expect(k.prune(ctx, func(types.NamespacedName) bool { return false })).To(Succeed())
			Expect(keyringData()).To(HaveKey(keyring.AuthorizerForwardKeyKey(w.ns, "shop")))
			Expect(keyringData()).NotTo(HaveKey(keyring.ForwardKeyKey(w.ns, "gone")))
		})

		It("answers WeChat in time when the app does not", func() {
			release := make(chan struct{})
			slowApp := newTestApp(func(r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			defer slowApp.srv.Close()
			defer close(release)
			platformReady(func(c *wechatv1alpha1.WeChatComponent) {
				c.Spec.Messages.Forward = &wechatv1alpha1.MessageForwarding{URL: slowApp.srv.URL, Timeout: "300ms",
					HMACKeySecretRef: wechatv1alpha1.HMACKeySecretReference{Name: "default-hmac", Key: "hmacKey"}}
			})
			hmacSecret("default-hmac", componentKey)
			w.reconcile()
			Expect(k8sClient.Create(ctx, &wechatv1alpha1.WeChatAuthorizer{
				ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: w.ns},
				Spec: wechatv1alpha1.WeChatAuthorizerSpec{
					ComponentRef: wechatv1alpha1.LocalObjectReference{Name: w.key.Name}, AppID: testAuthorizerAppID,
				},
			})).To(Succeed())
			bindAccount("shop", testAuthorizerAppID)

			start := time.Now()
			reply, err := w.sim.SendMessage(ctx, wxsim.MessageRequest{ComponentAppID: testComponentAppID,
				AuthorizerAppID: testAuthorizerAppID, MsgType: "text", Content: "anyone there?"})
			elapsed := time.Since(start)
			Expect(err).NotTo(HaveOccurred())
			Expect(reply.StatusCode).To(Equal(http.StatusOK))
			Expect(reply.Empty).To(BeTrue(), "success, since the app did not answer in time")
			Expect(slowApp.messages()).To(HaveLen(1), "the app got the message")
			Expect(elapsed).To(BeNumerically(">=", 300*time.Millisecond))
			Expect(elapsed).To(BeNumerically("<", 5*time.Second), "inside WeChat's deadline")
			Expect(testutilCounter(w.registry, "wechat_receiver_forwards_total", "timeout")).To(Equal(1.0))
		})
	})

	It("verifies, answers and counts messages for accounts the cluster does not know", func() {
		platformReady()
		reply, err := w.sim.SendMessage(ctx, wxsim.MessageRequest{ComponentAppID: testComponentAppID,
			AuthorizerAppID: "wx00000000000000dd", MsgType: "text", Content: "hello"})
		Expect(err).NotTo(HaveOccurred())
		Expect(reply.Empty).To(BeTrue())
		Expect(testutilCounter(w.registry, "wechat_receiver_messages_total", "answered")).To(Equal(1.0))

		By("rejecting a message sealed with another platform's token")
		body := []byte("<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[AAAA]]></Encrypt></xml>")
		resp := w.post(fmt.Sprintf("/wechat/%s/%s/messages/wx00000000000000dd", w.ns, w.key.Name),
			fmt.Sprintf("timestamp=%d&nonce=1&msg_signature=%s", w.clock.Now().Unix(), strings.Repeat("0", 40)), body)
		Expect(resp.StatusCode).To(Equal(http.StatusForbidden))
		_ = resp.Body.Close()
		Expect(testutilCounter(w.registry, "wechat_receiver_messages_total", "rejected")).To(Equal(1.0))
	})
})
