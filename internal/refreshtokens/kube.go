/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package refreshtokens

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// APIError is a failed read that stops a whole import or export; What names what was read
// ("WeChatAuthorizers in namespace \"ns\"").
type APIError struct {
	What string
	Err  error
}

func (e *APIError) Error() string {
	return fmt.Sprintf("reading %s: %s", e.What, oneLine(e.Err.Error()))
}
func (e *APIError) Unwrap() error { return e.Err }

// ImportSecretName is the Secret import creates for the WeChatAuthorizer named authorizer.
func ImportSecretName(authorizer string) string { return authorizer + "-import" }

// Summary counts what an import did with its lines.
type Summary struct{ Created, Skipped, Failed int }

// Import creates, for each line, a Secret holding its refresh token and then a WeChatAuthorizer
// of comp whose spec.refreshTokenSecretRef names it, reporting each line on out (never a
// token). An account that already has a WeChatAuthorizer of comp is skipped; a Secret that
// Import did not create is never written. With dryRun nothing is written. It returns an error
// only for what stops the whole import.
func Import(ctx context.Context, c client.Client, comp *wechatv1alpha1.WeChatComponent, lines []Line, dryRun bool, out io.Writer) (Summary, error) {
	var sum Summary
	ns := comp.Namespace
	var existing wechatv1alpha1.WeChatAuthorizerList
	if err := c.List(ctx, &existing, client.InNamespace(ns)); err != nil {
		return sum, &APIError{What: fmt.Sprintf("WeChatAuthorizers in namespace %q", ns), Err: err}
	}
	byName := map[string]*wechatv1alpha1.WeChatAuthorizer{}
	for i := range existing.Items {
		byName[existing.Items[i].Name] = &existing.Items[i]
	}
	for _, l := range lines {
		if a := wechatv1alpha1.PickAuthorizer(existing.Items, comp.Name, l.AppID); a != nil {
			sum.Skipped++
			fmt.Fprintf(out, "skipped %s: WeChatAuthorizer %s exists\n", l.AppID, a.Name)
			continue
		}
		a := wechatv1alpha1.NewAutoCreatedAuthorizer(comp, l.AppID)
		if other := byName[a.Name]; other != nil {
			sum.Failed++
			fmt.Fprintf(out, "failed %s: the name %s is taken by a WeChatAuthorizer for %s of component %s\n",
				l.AppID, a.Name, other.Spec.AppID, other.Spec.ComponentRef.Name)
			continue
		}
		secret := ImportSecretName(a.Name)
		a.Spec.RefreshTokenSecretRef = &wechatv1alpha1.SecretKeyReference{Name: secret}
		if dryRun {
			sum.Created++
			fmt.Fprintf(out, "would create WeChatAuthorizer %s (%s) and Secret %s\n", a.Name, l.AppID, secret)
			continue
		}
		// The Secret first: the manager then finds it at the authorizer's first reconcile.
		if err := putImportSecret(ctx, c, ns, secret, a.Name, comp.Name, l.RefreshToken); err != nil {
			sum.Failed++
			fmt.Fprintf(out, "failed %s: %s\n", l.AppID, oneLine(err.Error()))
			continue
		}
		switch err := c.Create(ctx, a); {
		case apierrors.IsAlreadyExists(err):
			sum.Skipped++
			fmt.Fprintf(out, "skipped %s: WeChatAuthorizer %s was created meanwhile\n", l.AppID, a.Name)
		case err != nil:
			sum.Failed++
			fmt.Fprintf(out, "failed %s: creating WeChatAuthorizer %s: %s\n", l.AppID, a.Name, oneLine(err.Error()))
		default:
			sum.Created++
			fmt.Fprintf(out, "created WeChatAuthorizer %s (%s) and Secret %s\n", a.Name, l.AppID, secret)
		}
	}
	return sum, nil
}

// putImportSecret creates Secret name holding token for authorizer, or updates it if an
// earlier import created it. Labels and annotations others put on it are kept.
func putImportSecret(ctx context.Context, c client.Client, ns, name, authorizer, component, token string) error {
	usableBy := wechatv1alpha1.KindWeChatAuthorizer + "/" + authorizer
	secret := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secret)
	if apierrors.IsNotFound(err) {
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: ns, Name: name,
				Labels: map[string]string{
					wechatv1alpha1.LabelManagedBy: wechatv1alpha1.ManagedByPluginValue,
					wechatv1alpha1.LabelComponent: component,
				},
				Annotations: map[string]string{wechatv1alpha1.AnnotationUsableBy: usableBy},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{wechatv1alpha1.DefaultRefreshTokenKey: []byte(token)},
		}
		if err := c.Create(ctx, secret); err != nil {
			return fmt.Errorf("creating Secret %s: %s", name, oneLine(err.Error()))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Secret %s: %s", name, oneLine(err.Error()))
	}
	if secret.Labels[wechatv1alpha1.LabelManagedBy] != wechatv1alpha1.ManagedByPluginValue {
		return fmt.Errorf("the Secret %s exists and was not created by kubectl wechat import: left alone; delete or rename it", name)
	}
	// A re-run after an import that stopped between the Secret and the authorizer.
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Data[wechatv1alpha1.DefaultRefreshTokenKey] = []byte(token)
	secret.Annotations[wechatv1alpha1.AnnotationUsableBy] = usableBy
	if err := c.Update(ctx, secret); err != nil {
		return fmt.Errorf("updating Secret %s: %s", name, oneLine(err.Error()))
	}
	return nil
}

// Export reads the refresh token of each WeChatAuthorizer in ns (of component, if not
// empty) from its state Secret, sorted by appid. Authorizers without one are reported on
// report (never a token).
func Export(ctx context.Context, c client.Client, ns, component string, report io.Writer) ([]Line, error) {
	var list wechatv1alpha1.WeChatAuthorizerList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, &APIError{What: fmt.Sprintf("WeChatAuthorizers in namespace %q", ns), Err: err}
	}
	items := slices.DeleteFunc(list.Items, func(a wechatv1alpha1.WeChatAuthorizer) bool {
		return component != "" && a.Spec.ComponentRef.Name != component
	})
	slices.SortFunc(items, func(a, b wechatv1alpha1.WeChatAuthorizer) int {
		return cmp.Or(cmp.Compare(a.Spec.AppID, b.Spec.AppID), cmp.Compare(a.Name, b.Name))
	})
	var out []Line
	seen := map[string]*wechatv1alpha1.WeChatAuthorizer{}
	for i := range items {
		a := &items[i]
		if other := seen[a.Spec.AppID]; other != nil {
			if other.Spec.ComponentRef.Name == a.Spec.ComponentRef.Name {
				// Two authorizers of one component for one account: the manager keeps only one
				// of them fresh; the other's state is not a second account.
				fmt.Fprintf(report, "skipped WeChatAuthorizer %s: %s is exported from WeChatAuthorizer %s\n", a.Name, a.Spec.AppID, other.Name)
				continue
			}
			return nil, fmt.Errorf("appid %s is authorized to components %s and %s: export one component at a time (--component)",
				a.Spec.AppID, other.Spec.ComponentRef.Name, a.Spec.ComponentRef.Name)
		}
		name := wechatv1alpha1.StateSecretName(a.Name)
		secret := &corev1.Secret{}
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secret)
		switch {
		case apierrors.IsNotFound(err):
			fmt.Fprintf(report, "skipped WeChatAuthorizer %s (%s): no refresh token yet (no Secret %s)\n", a.Name, a.Spec.AppID, name)
			continue
		case apierrors.IsForbidden(err):
			return nil, fmt.Errorf("reading Secret %s in namespace %q is forbidden: export needs RBAC to get Secrets there", name, ns)
		case err != nil:
			return nil, fmt.Errorf("reading Secret %s: %s", name, oneLine(err.Error()))
		}
		// As the manager reads it: a state Secret for another appid is not this account's.
		token := string(secret.Data[wechatv1alpha1.SecretKeyRefreshToken])
		if string(secret.Data[wechatv1alpha1.SecretKeyAppID]) != a.Spec.AppID || token == "" {
			fmt.Fprintf(report, "skipped WeChatAuthorizer %s (%s): no refresh token yet in Secret %s\n", a.Name, a.Spec.AppID, name)
			continue
		}
		seen[a.Spec.AppID] = a
		out = append(out, Line{AppID: a.Spec.AppID, RefreshToken: token})
	}
	return out, nil
}

// oneLine keeps only the first line of s: every failure is reported on one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}
