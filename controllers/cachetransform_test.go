/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// cachedTokenSecret is a token Secret as the manager's informer decodes it: every string its
// own allocation (protobuf decoding copies each out of the message).
func cachedTokenSecret(i int) *corev1.Secret {
	s := &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("account-%06d-token", i), Namespace: "bench", ResourceVersion: fmt.Sprint(1000 + i),
			UID: types.UID(fmt.Sprintf("ffef38e7-933e-4d89-924f-%012d", i)),
			Labels: map[string]string{
				wechatv1alpha1.LabelManagedBy:  wechatv1alpha1.ManagedByValue,
				wechatv1alpha1.LabelAuthorizer: fmt.Sprintf("account-%06d", i),
				wechatv1alpha1.LabelComponent:  "platform-000",
			},
			Annotations: map[string]string{
				wechatv1alpha1.AnnotationIssuedAt:  "2026-12-02T13:38:48Z",
				wechatv1alpha1.AnnotationTokenHash: fmt.Sprintf("%016x", i),
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: wechatv1alpha1.GroupVersion.String(),
				Kind: "WeChatAuthorizer", Name: fmt.Sprintf("account-%06d", i), UID: types.UID(fmt.Sprint(i))}},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "wechat-operator-manager", Operation: metav1.ManagedFieldsOperationUpdate}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			wechatv1alpha1.SecretKeyAccessToken: []byte(fmt.Sprintf("token-%d", i)),
			wechatv1alpha1.SecretKeyExpiresAt:   []byte("2026-12-02T13:42:48Z"),
			wechatv1alpha1.SecretKeyAppID:       []byte(fmt.Sprintf("wx%016d", i)),
		},
	}
	// Each string its own copy, as decoded.
	return roundTrip(s)
}

func roundTrip(s *corev1.Secret) *corev1.Secret {
	data, err := s.Marshal()
	if err != nil {
		panic(err)
	}
	out := &corev1.Secret{}
	if err := out.Unmarshal(data); err != nil {
		panic(err)
	}
	out.TypeMeta = metav1.TypeMeta{APIVersion: string([]byte("v1")), Kind: string([]byte("Secret"))}
	return out
}

func sameString(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// TestCompactCachedSharesStrings: two cached Secrets hold one copy of the strings they
// repeat, and nothing but managedFields differs from what was decoded, so a write of a
// cached object sends what it would have sent.
func TestCompactCachedSharesStrings(t *testing.T) {
	a, b := cachedTokenSecret(1), cachedTokenSecret(2)
	if sameString(a.Namespace, b.Namespace) {
		t.Fatal("the decoded Secrets share their namespace already: the test proves nothing")
	}
	wantA := a.DeepCopy()
	wantA.ManagedFields = nil
	for _, s := range []*corev1.Secret{a, b} {
		if _, err := compactCached(s); err != nil {
			t.Fatal(err)
		}
	}
	if !equality.Semantic.DeepEqual(a, wantA) {
		t.Fatalf("the transform changed the Secret:\n%#v\nwant\n%#v", a, wantA)
	}
	if !sameString(a.Namespace, b.Namespace) || !sameString(string(a.Type), string(b.Type)) ||
		!sameString(a.OwnerReferences[0].Kind, b.OwnerReferences[0].Kind) || !sameString(a.Kind, b.Kind) ||
		!sameString(a.Labels[wechatv1alpha1.LabelManagedBy], b.Labels[wechatv1alpha1.LabelManagedBy]) {
		t.Error("namespace, type, owner kind, kind or managed-by value not shared")
	}
	for _, m := range []func(*corev1.Secret) []string{
		func(s *corev1.Secret) []string { return keys(s.Labels) },
		func(s *corev1.Secret) []string { return keys(s.Annotations) },
		func(s *corev1.Secret) []string { return keys(s.Data) },
	} {
		for _, ka := range m(a) {
			found := false
			for _, kb := range m(b) {
				found = found || sameString(ka, kb)
			}
			if !found {
				t.Errorf("key %q not shared", ka)
			}
		}
	}
}

// TestCompactCachedConditions: an authorizer's condition types, statuses and reasons are shared.
func TestCompactCachedConditions(t *testing.T) {
	newA := func() *wechatv1alpha1.WeChatAuthorizer {
		return &wechatv1alpha1.WeChatAuthorizer{Status: wechatv1alpha1.WeChatAuthorizerStatus{Conditions: []metav1.Condition{{
			Type: string([]byte("Ready")), Status: metav1.ConditionStatus([]byte("True")), Reason: string([]byte("TokenIssued")),
			Message: "m", LastTransitionTime: metav1.NewTime(time.Unix(0, 0))}}}}
	}
	a, b := newA(), newA()
	want := a.DeepCopy()
	for _, o := range []*wechatv1alpha1.WeChatAuthorizer{a, b} {
		if _, err := compactCached(o); err != nil {
			t.Fatal(err)
		}
	}
	if !equality.Semantic.DeepEqual(a, want) {
		t.Fatal("the transform changed the authorizer")
	}
	ca, cb := a.Status.Conditions[0], b.Status.Conditions[0]
	if !sameString(ca.Type, cb.Type) || !sameString(ca.Reason, cb.Reason) || !sameString(string(ca.Status), string(cb.Status)) {
		t.Error("condition type, status or reason not shared")
	}
}

// retainedPerObject is the heap n objects from newObj hold after transform, per object.
func retainedPerObject(t *testing.T, n int, newObj func(i int) any, transform func(any) (any, error)) float64 {
	t.Helper()
	objs := make([]any, n)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range objs {
		var err error
		if objs[i], err = transform(newObj(i)); err != nil { // what the cache keeps is what the transform returns
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(objs)
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
}

// TestCompactCachedRetained logs what a cached token Secret holds with and without the
// transform (the figure in docs/benchmarks.md).
func TestCompactCachedRetained(t *testing.T) {
	const n = 5000
	newSecret := func(i int) any { return cachedTokenSecret(i) }
	plain := retainedPerObject(t, n, newSecret, cache.TransformStripManagedFields()) // managedFields stripped only
	compact := retainedPerObject(t, n, newSecret, compactCached)
	t.Logf("a cached token Secret holds %.0f B, %.0f B with the transform", plain, compact)
	if compact >= plain {
		t.Errorf("the transform saves nothing: %.0f B, %.0f B before", compact, plain)
	}
}

// cachedAuthorizerJSON is an authorizer as the scale benchmark leaves it.
const cachedAuthorizerJSON = `{"apiVersion":"platform.wechat-operator.dev/v1alpha1","kind":"WeChatAuthorizer","metadata":{"creationTimestamp":"2026-12-02T13:38:48Z","generation":1,"name":"account-000000","namespace":"bench","resourceVersion":"370","uid":"a5d690cf-34ee-4773-818f-bec69aff02b5"},"spec":{"appID":"wx00000000a0000000","componentRef":{"name":"platform-000"},"messages":{},"refresh":{},"tokenSecret":{}},"status":{"conditions":[{"lastTransitionTime":"2026-12-02T13:38:48Z","message":"authorized; refresh token kept in Secret \"account-000000-state\"","observedGeneration":1,"reason":"Authorized","status":"True","type":"Authorized"},{"lastTransitionTime":"2026-12-02T13:38:48Z","message":"authorizer_access_token is in Secret \"account-000000-token\", valid until 2026-12-02T13:42:48Z, next refresh at 2026-12-02T13:42:15Z","observedGeneration":1,"reason":"TokenIssued","status":"True","type":"Ready"}],"expiresAt":"2026-12-02T13:42:48Z","info":{"businessInfo":{},"funcInfo":[1,2,3,4,11],"headImg":"http://wx.qlogo.cn/mmopen/sim-wx00000000a0000000/0","nickName":"Sim account wx00000000a0000000","principalName":"Simulated Company Ltd.","qrcodeURL":"http://mmbiz.qpic.cn/mmbiz_jpg/sim-wx00000000a0000000/0","serviceType":0,"updatedAt":"2026-12-02T13:38:48Z","userName":"gh_00000000a000","verifyType":0},"lastRefreshTime":"2026-12-02T13:38:48Z","observedGeneration":1,"refreshAt":"2026-12-02T13:42:15Z","tokenSecretName":"account-000000-token"}}`

// TestCompactCachedRetainedAuthorizer logs what a cached authorizer holds with and without the
// transform (the figure in docs/benchmarks.md).
func TestCompactCachedRetainedAuthorizer(t *testing.T) {
	const n = 20000 // the saving is small per object: enough of them to stand out of other goroutines' noise
	newAuthorizer := func(int) any {
		a := &wechatv1alpha1.WeChatAuthorizer{}
		if err := json.Unmarshal([]byte(cachedAuthorizerJSON), a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	plain := retainedPerObject(t, n, newAuthorizer, cache.TransformStripManagedFields())
	compact := retainedPerObject(t, n, newAuthorizer, compactCached)
	t.Logf("a cached authorizer holds %.0f B, %.0f B with the transform", plain, compact)
	if compact >= plain {
		t.Errorf("the transform saves nothing: %.0f B, %.0f B before", compact, plain)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCompactCachedLeavesOutWhatNoControllerReads: kubectl's copy of the spec and the parts of
// status.info meant for people are not cached; what the controllers read is, and so are
// other tools' annotations.
func TestCompactCachedLeavesOutWhatNoControllerReads(t *testing.T) {
	a := &wechatv1alpha1.WeChatAuthorizer{}
	if err := json.Unmarshal([]byte(cachedAuthorizerJSON), a); err != nil {
		t.Fatal(err)
	}
	a.Status.Info.MiniProgram = true
	a.Annotations = map[string]string{
		corev1.LastAppliedConfigAnnotation: `{"apiVersion":"platform.wechat-operator.dev/v1alpha1","kind":"WeChatAuthorizer"}`,
		"example.com/owner":                "team-a",
	}
	want := a.Status.Info.DeepCopy()
	if _, err := compactCached(a); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		t.Error("the last-applied configuration is cached")
	}
	if a.Annotations["example.com/owner"] != "team-a" {
		t.Errorf("another tool's annotation is lost: %v", a.Annotations)
	}
	info := a.Status.Info
	if info.NickName != "" || info.HeadImg != "" || info.PrincipalName != "" || info.QRCodeURL != "" || info.BusinessInfo != nil {
		t.Errorf("the info meant for people is cached: %+v", info)
	}
	if !info.UpdatedAt.Equal(want.UpdatedAt) || !slices.Equal(info.FuncInfo, want.FuncInfo) || !info.MiniProgram {
		t.Errorf("what the controllers read is lost: %+v, want updatedAt %v, funcInfo %v, miniProgram", info, want.UpdatedAt, want.FuncInfo)
	}

	c := &wechatv1alpha1.WeChatComponent{}
	c.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: "{}"}
	if _, err := compactCached(c); err != nil {
		t.Fatal(err)
	}
	if c.Annotations != nil {
		t.Errorf("a component's last-applied configuration is cached: %v", c.Annotations)
	}
}

// cachedStateSecret is a state Secret as the manager's informer decodes it; with a token,
// it also holds an access token (a rotated refresh token, an exchanged code).
func cachedStateSecret(i int, withToken bool) *corev1.Secret {
	s := cachedTokenSecret(i)
	s.Name = wechatv1alpha1.StateSecretName(fmt.Sprintf("account-%06d", i))
	delete(s.Labels, wechatv1alpha1.LabelComponent)
	s.Annotations = nil
	s.Data = map[string][]byte{
		wechatv1alpha1.SecretKeyRefreshToken: []byte(fmt.Sprintf("refreshtoken@@@%d", i)),
		stateKeyAppID:                        []byte(fmt.Sprintf("wx%016d", i)),
	}
	if withToken {
		s.Data[stateKeyAccessToken] = []byte(fmt.Sprintf("token-%d", i))
		s.Data[stateKeyExpiresAt] = []byte("2026-12-02T13:42:48Z")
		s.Data[stateKeyIssuedAt] = []byte("2026-12-02T11:42:48Z")
	}
	return roundTrip(s)
}

// TestCompactCachedStateSecretIsAView: the cache keeps of a state Secret who owns it and when
// its access token expires, and no secret; a token Secret, even one named like a state
// Secret, keeps its data.
func TestCompactCachedStateSecretIsAView(t *testing.T) {
	for _, withToken := range []bool{false, true} {
		s := cachedStateSecret(7, withToken)
		want := s.DeepCopy()
		obj, err := compactCached(s)
		if err != nil {
			t.Fatal(err)
		}
		view := obj.(*corev1.Secret)
		if !isStateView(view) || view.Data != nil || view.StringData != nil || view.Labels != nil {
			t.Fatalf("withToken=%v: the cache holds %#v, want a view without data or labels", withToken, view)
		}
		if view.Name != want.Name || view.Namespace != want.Namespace || view.UID != want.UID ||
			view.ResourceVersion != want.ResourceVersion || !equality.Semantic.DeepEqual(view.OwnerReferences, want.OwnerReferences) {
			t.Errorf("withToken=%v: the view lost the Secret's identity or owner: %#v", withToken, view.ObjectMeta)
		}
		expiry, hasExpiry := stateViewExpiry(view)
		if withToken != hasExpiry || (withToken && expiry.Format(time.RFC3339) != string(want.Data[stateKeyExpiresAt])) {
			t.Errorf("withToken=%v: the view's type is %q", withToken, view.Type)
		}
		if view.Annotations != nil {
			t.Errorf("withToken=%v: the view holds annotations %v, a map for each authorizer", withToken, view.Annotations)
		}
		if got := readState(view, string(want.Data[stateKeyAppID])); got.refreshToken != "" || got.token != nil {
			t.Errorf("a view reads as a state: %+v", got)
		}
	}

	token := cachedTokenSecret(8)
	token.Name = wechatv1alpha1.StateSecretName(token.Labels[wechatv1alpha1.LabelAuthorizer]) // its component label tells it apart
	obj, err := compactCached(token)
	if err != nil {
		t.Fatal(err)
	}
	if s := obj.(*corev1.Secret); isStateView(s) || len(s.Data[wechatv1alpha1.SecretKeyAccessToken]) == 0 {
		t.Errorf("a token Secret is cached as a state view: %#v", s)
	}
}

// TestStateMayBeNewer: only a view whose token expires after the served one asks for a read.
func TestStateMayBeNewer(t *testing.T) {
	obj, err := compactCached(cachedStateSecret(9, true)) // expires 2026-12-02T13:42:48Z
	if err != nil {
		t.Fatal(err)
	}
	view := obj.(*corev1.Secret)
	at := func(s string) *issuedToken {
		e, _ := time.Parse(time.RFC3339, s)
		return &issuedToken{accessToken: "x", expiresAt: e}
	}
	for i, c := range []struct {
		view   *corev1.Secret
		served *issuedToken
		want   bool
	}{
		{view, at("2026-12-02T13:00:00Z"), true},
		{view, nil, true},
		{view, at("2026-12-02T13:42:48Z"), false},
		{view, at("2026-12-02T14:00:00Z"), false},
		{nil, nil, false},
		{&corev1.Secret{Type: stateViewType}, nil, false}, // no token in the state
		{&corev1.Secret{Type: stateViewType + "/not-a-time"}, nil, false},
		{&corev1.Secret{Type: stateViewType + "s/2026-12-02T14:00:00Z"}, nil, false}, // not a view's type
		{&corev1.Secret{Type: corev1.SecretTypeOpaque}, nil, false},
	} {
		if got := stateMayBeNewer(c.view, c.served); got != c.want {
			t.Errorf("case %d: stateMayBeNewer(%v, %v) = %v, want %v", i, c.view, c.served, got, c.want)
		}
	}
}

// TestIsStateView: only the view's type, alone or followed by "/" and an expiry, is a view's.
func TestIsStateView(t *testing.T) {
	for typ, want := range map[corev1.SecretType]bool{
		stateViewType:                            true,
		stateViewType + "/2026-12-02T14:00:00Z":  true,
		stateViewType + "s":                      false,
		stateViewType + "s/2026-12-02T14:00:00Z": false,
		corev1.SecretTypeOpaque:                  false,
	} {
		if got := isStateView(&corev1.Secret{Type: typ}); got != want {
			t.Errorf("isStateView(%q) = %v, want %v", typ, got, want)
		}
	}
	if isStateView(nil) {
		t.Error("isStateView(nil)")
	}
}

// TestCompactCachedRetainedState logs what a cached state Secret holds with and without the view.
func TestCompactCachedRetainedState(t *testing.T) {
	const n = 5000
	for _, withToken := range []bool{false, true} {
		newSecret := func(i int) any { return cachedStateSecret(i, withToken) }
		plain := retainedPerObject(t, n, newSecret, cache.TransformStripManagedFields())
		compact := retainedPerObject(t, n, newSecret, compactCached)
		t.Logf("a cached state Secret (access token in it: %v) holds %.0f B, %.0f B as a view", withToken, plain, compact)
		if compact >= plain {
			t.Errorf("withToken=%v: the view saves nothing: %.0f B, %.0f B before", withToken, compact, plain)
		}
	}
}

// writtenTokenSecret is an authorizer's token Secret as the operator writes it: annotations
// that agree with the data, and an access token as long as WeChat's.
func writtenTokenSecret(i int) *corev1.Secret {
	s := cachedTokenSecret(i)
	token := fmt.Sprintf("%0150d", i)
	s.Data[wechatv1alpha1.SecretKeyAccessToken] = []byte(token)
	s.Annotations[wechatv1alpha1.AnnotationExpiresAt] = string(s.Data[wechatv1alpha1.SecretKeyExpiresAt])
	s.Annotations[wechatv1alpha1.AnnotationTokenHash] = tokenHash(token)
	s.OwnerReferences[0].Controller = ptr.To(true)
	return roundTrip(s)
}

// TestCompactCachedTokenSecretIsAView: the cache keeps of a token Secret as the operator
// writes it everything but its data, and reads from it the token's hash and times; a token
// Secret that carries more, or whose annotations do not match its data, and a component's,
// are cached whole.
func TestCompactCachedTokenSecretIsAView(t *testing.T) {
	s := writtenTokenSecret(3)
	want := s.DeepCopy()
	obj, err := compactCached(s)
	if err != nil {
		t.Fatal(err)
	}
	view := obj.(*corev1.Secret)
	if !isTokenView(view) || view.Data != nil {
		t.Fatalf("the cache holds %#v, want a view without data", view)
	}
	viewed, ok := viewedTokenOf(view)
	if !ok || !equality.Semantic.DeepEqual(view.Labels, want.Labels) || !equality.Semantic.DeepEqual(viewed.annotations(view), want.Annotations) ||
		view.ResourceVersion != want.ResourceVersion || !equality.Semantic.DeepEqual(view.OwnerReferences, want.OwnerReferences) {
		t.Errorf("the view (%q) lost metadata: %#v", view.Type, view.ObjectMeta)
	}
	if view.Annotations != nil {
		t.Errorf("the view keeps the token's annotations in a map of its own: %v", view.Annotations)
	}
	appID := string(want.Data[wechatv1alpha1.SecretKeyAppID])
	full, fromView := readTokenSecret(want, appID), readTokenSecret(view, appID)
	if fromView == nil || fromView.known() || fromView.hash() != full.hash() || !fromView.expiresAt.Equal(full.expiresAt) ||
		!fromView.issuedAt.Equal(full.issuedAt) || !fromView.validAt(full.expiresAt.Add(-time.Second)) || fromView.validAt(full.expiresAt) {
		t.Errorf("the view reads as %+v, the Secret as %+v", fromView, full)
	}
	if got := readTokenSecret(view, "wx00000000000000ff"); got != nil {
		t.Errorf("a view read for another appid: %+v", got)
	}

	others := writtenTokenSecret(5)
	others.Annotations["reloader.example.com/match"] = "true"
	want = others.DeepCopy()
	obj, err = compactCached(others)
	if err != nil {
		t.Fatal(err)
	}
	view = obj.(*corev1.Secret)
	if viewed, ok := viewedTokenOf(view); !ok || !equality.Semantic.DeepEqual(view.Annotations, map[string]string{"reloader.example.com/match": "true"}) ||
		!equality.Semantic.DeepEqual(viewed.annotations(view), want.Annotations) {
		t.Errorf("another tool's annotation: the view (%q) holds %v", view.Type, view.Annotations)
	}

	for name, mutate := range map[string]func(*corev1.Secret){
		"an API ticket beside the token": func(s *corev1.Secret) { s.Data["jsapi_ticket"] = []byte("t") },
		"a key someone added":            func(s *corev1.Secret) { s.Data["note"] = nil; delete(s.Data, wechatv1alpha1.SecretKeyExpiresAt) },
		"a token edited by hand":         func(s *corev1.Secret) { s.Data[wechatv1alpha1.SecretKeyAccessToken] = []byte("edited") },
		"another expiry in the data":     func(s *corev1.Secret) { s.Data[wechatv1alpha1.SecretKeyExpiresAt] = []byte("2026-12-02T14:00:00Z") },
		"not Opaque":                     func(s *corev1.Secret) { s.Type = "example.com/token" },
		"a component's token Secret":     func(s *corev1.Secret) { s.OwnerReferences[0].Kind = wechatv1alpha1.KindWeChatComponent },
		"an empty issue time":            func(s *corev1.Secret) { s.Annotations[wechatv1alpha1.AnnotationIssuedAt] = "" },
		"a slash in the expiry": func(s *corev1.Secret) {
			s.Data[wechatv1alpha1.SecretKeyExpiresAt] = []byte("2026/12/02")
			s.Annotations[wechatv1alpha1.AnnotationExpiresAt] = "2026/12/02"
		},
	} {
		s := writtenTokenSecret(4)
		mutate(s)
		obj, err := compactCached(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := obj.(*corev1.Secret); isTokenView(got) || got.Data == nil {
			t.Errorf("%s: cached as a view", name)
		}
	}
}

// TestCompactCachedRetainedTokenView logs what a cached token Secret holds with and without the view.
func TestCompactCachedRetainedTokenView(t *testing.T) {
	const n = 5000
	newSecret := func(i int) any { return writtenTokenSecret(i) }
	plain := retainedPerObject(t, n, newSecret, cache.TransformStripManagedFields())
	compact := retainedPerObject(t, n, newSecret, compactCached)
	t.Logf("a cached token Secret holds %.0f B, %.0f B as a view", plain, compact)
	if compact >= plain-400 {
		t.Errorf("the view saves less than its data: %.0f B, %.0f B before", compact, plain)
	}
}

// TestEnsureWritesNoTokenItDoesNotHold: a token known by its hash only is written over its
// view or not at all; without the view there is no value to write, and nothing is sent.
func TestEnsureWritesNoTokenItDoesNotHold(t *testing.T) {
	w := &tokenSecretWriter{} // no client: a write would panic
	owner := &wechatv1alpha1.WeChatAuthorizer{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "bench"}}
	hashOnly := &issuedToken{valueHash: tokenHash("t"), appID: "wx0000000000000001", expiresAt: time.Now().Add(time.Hour)}
	for _, existing := range []*corev1.Secret{nil, writtenTokenSecret(5)} {
		_, err := w.ensure(t.Context(), owner, existing, "shop-token", wechatv1alpha1.TokenSecretTemplate{}, nil, hashOnly)
		if !errors.Is(err, errTokenSecretChanged) {
			t.Errorf("existing %v: ensure = %v, want errTokenSecretChanged", existing != nil, err)
		}
	}
}
