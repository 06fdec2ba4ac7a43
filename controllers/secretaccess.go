/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// A spec field that names a Secret is a privilege path: whoever may edit a WeChatComponent
// or WeChatAuthorizer but not read Secrets could otherwise name any Secret of the namespace
// and have the manager copy it into the receiver keyring (credentials' token and
// encodingAESKey, forwarding HMAC keys; key names are free) or send it to WeChat (a
// refresh-token import). So the manager uses a named Secret only when the Secret's owner
// released it to the referring resource with the usable-by annotation (api/v1alpha1).

const msgSecretNotOptedIn = "%s: Secret %q is not released to %s/%s, so the operator does not read it; " +
	"if it is meant for this resource, add %s/%s to its annotation %s (a comma-separated list), e.g. " +
	"`kubectl annotate secret %s -n %s %s=%s/%s`, then touch an annotation of this resource to apply it at once"

// usableBy reports whether secret's usable-by annotation names the resource kind/name.
func usableBy(secret *corev1.Secret, kind, name string) bool {
	for entry := range strings.SplitSeq(secret.Annotations[wechatv1alpha1.AnnotationUsableBy], ",") {
		k, n, ok := strings.Cut(strings.TrimSpace(entry), "/")
		if ok && k == kind && (n == name || n == "*") {
			return true
		}
	}
	return false
}

// notOptedIn says what to do about a Secret that field names but that is not released to kind/name.
func notOptedIn(field string, secret *corev1.Secret, kind, name string) string {
	a := wechatv1alpha1.AnnotationUsableBy
	return fmt.Sprintf(msgSecretNotOptedIn, field, secret.Name, kind, name, kind, name, a,
		secret.Name, secret.Namespace, a, kind, name)
}
