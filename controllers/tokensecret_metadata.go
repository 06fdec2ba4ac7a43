/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"encoding/json"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	wechatv1alpha1 "github.com/wechat-operator/wechat-operator/api/v1alpha1"
)

// tokenAnnotations are the annotations the operator sets on a Secret that holds a token.
var tokenAnnotations = []string{wechatv1alpha1.AnnotationExpiresAt, wechatv1alpha1.AnnotationIssuedAt, wechatv1alpha1.AnnotationTokenHash}

// templateKeys are the keys a template set, sorted.
type templateKeys struct {
	Labels      []string `json:"labels,omitempty"`
	Annotations []string `json:"annotations,omitempty"`
}

func (k templateKeys) empty() bool { return len(k.Labels) == 0 && len(k.Annotations) == 0 }

// previousTemplateKeys reads wechatv1alpha1.AnnotationTemplateKeys; nothing if absent or unreadable (a
// Secret written by an older version: its template keys are then left in place).
func previousTemplateKeys(s *corev1.Secret) templateKeys {
	var k templateKeys
	if v, ok := s.Annotations[wechatv1alpha1.AnnotationTemplateKeys]; ok {
		_ = json.Unmarshal([]byte(v), &k)
	}
	return k
}

// metadata is the operator's share of a token Secret's labels and annotations.
type metadata struct {
	labels, annotations map[string]string
	// drop are keys the operator set at some time and does not want now.
	dropAnnotations []string
	template        templateKeys
}

// ownedMetadata is what the operator wants on a token Secret: the template's keys, the
// operator's own labels (which win over the template's), and the token's annotations.
func ownedMetadata(tmpl wechatv1alpha1.TokenSecretTemplate, labels map[string]string, token *issuedToken) metadata {
	m := metadata{labels: map[string]string{}, annotations: map[string]string{}}
	maps.Copy(m.labels, tmpl.Labels)
	maps.Copy(m.labels, labels)
	m.labels[wechatv1alpha1.LabelManagedBy] = wechatv1alpha1.ManagedByValue
	maps.Copy(m.annotations, tmpl.Annotations)
	m.template = templateKeys{Labels: slices.Sorted(maps.Keys(tmpl.Labels)), Annotations: slices.Sorted(maps.Keys(tmpl.Annotations))}
	if token != nil {
		m.annotations[wechatv1alpha1.AnnotationExpiresAt] = token.expiresAt.UTC().Format(time.RFC3339)
		m.annotations[wechatv1alpha1.AnnotationIssuedAt] = token.issuedAt.UTC().Format(time.RFC3339)
		m.annotations[wechatv1alpha1.AnnotationTokenHash] = token.hash()
	} else {
		m.dropAnnotations = tokenAnnotations
	}
	if m.template.empty() {
		m.dropAnnotations = append(slices.Clone(m.dropAnnotations), wechatv1alpha1.AnnotationTemplateKeys)
	} else {
		record, _ := json.Marshal(m.template)
		m.annotations[wechatv1alpha1.AnnotationTemplateKeys] = string(record)
	}
	return m
}

// apply returns current labels and annotations with the operator's keys set, and the
// template keys of previous that the template no longer has removed. Other keys are kept.
// nil results stand for empty maps, as the API server returns them.
func (m metadata) apply(labels, annotations map[string]string, previous templateKeys) (map[string]string, map[string]string) {
	outL, outA := maps.Clone(labels), maps.Clone(annotations)
	if outL == nil {
		outL = map[string]string{}
	}
	if outA == nil {
		outA = map[string]string{}
	}
	for _, k := range previous.Labels {
		if _, want := m.labels[k]; !want {
			delete(outL, k)
		}
	}
	for _, k := range previous.Annotations {
		if _, want := m.annotations[k]; !want {
			delete(outA, k)
		}
	}
	for _, k := range m.dropAnnotations {
		delete(outA, k)
	}
	maps.Copy(outL, m.labels)
	maps.Copy(outA, m.annotations)
	if len(outA) == 0 {
		outA = nil
	}
	return outL, outA
}

// applied reports whether apply would return labels and annotations unchanged (an empty map
// and nil count as the same, as the API server stores them), without building them: a
// reconcile with nothing to do asks this of every token Secret.
func (m metadata) applied(labels, annotations map[string]string, previous templateKeys) bool {
	for _, k := range previous.Labels {
		if _, want := m.labels[k]; !want {
			if _, has := labels[k]; has {
				return false
			}
		}
	}
	for _, k := range previous.Annotations {
		if _, want := m.annotations[k]; !want {
			if _, has := annotations[k]; has {
				return false
			}
		}
	}
	for _, k := range m.dropAnnotations {
		if _, want := m.annotations[k]; !want {
			if _, has := annotations[k]; has {
				return false
			}
		}
	}
	for k, v := range m.labels {
		if have, ok := labels[k]; !ok || have != v {
			return false
		}
	}
	for k, v := range m.annotations {
		if have, ok := annotations[k]; !ok || have != v {
			return false
		}
	}
	return true
}
