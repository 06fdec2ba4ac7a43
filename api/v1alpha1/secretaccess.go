/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package v1alpha1

// AnnotationUsableBy opts a Secret in to being read by the operator for the resources it
// names. The manager reads a Secret that a spec field names (credentialsSecretRef,
// refreshTokenSecretRef, messages.forward.hmacKeySecretRef) only when that Secret, in the
// resource's own namespace, carries this annotation naming the resource:
//
//	platform.wechat-operator.dev/usable-by: WeChatComponent/demo-platform
//	platform.wechat-operator.dev/usable-by: WeChatComponent/demo-platform, WeChatAuthorizer/*
//
// The value is a comma-separated list of "<Kind>/<name>" entries; the name "*" stands for
// every resource of that kind in the namespace. Whoever may edit a WeChatComponent or a
// WeChatAuthorizer can thereby name only Secrets their owner released to it: without the
// annotation, naming a Secret (say, another team's database password) in a spec field would
// make the manager copy parts of it into the receiver keyring, or send it to WeChat.
const AnnotationUsableBy = "platform.wechat-operator.dev/usable-by"

// Kinds that AnnotationUsableBy entries name.
const (
	KindWeChatComponent  = "WeChatComponent"
	KindWeChatAuthorizer = "WeChatAuthorizer"
)
