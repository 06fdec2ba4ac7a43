/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package controllers

import (
	"fmt"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wechat-operator/wechat-operator/internal/keyring"
)

var _ = Describe("the receiver keyring (real API server)", func() {
	It("takes the keys of 16 components written at once: none fails, none is lost", func() {
		ns := newNamespace()
		const writers = 16
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				k := &keyringWriter{client: k8sClient, namespace: ns, name: testKeyringName}
				_, errs[i] = k.project(ctx, types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("platform-%02d", i)},
					fmt.Sprintf("token-%02d", i), fmt.Sprintf("aes-key-%02d", i), nil)
			})
		}
		wg.Wait()
		for i, err := range errs {
			Expect(err).NotTo(HaveOccurred(), "writer %d (the first write creates the keyring, the others race it)", i)
		}
		s := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: testKeyringName}, s)).To(Succeed())
		for i := range writers {
			name := fmt.Sprintf("platform-%02d", i)
			Expect(s.Data).To(HaveKeyWithValue(keyring.TokenKey(ns, name), []byte(fmt.Sprintf("token-%02d", i))))
			Expect(s.Data).To(HaveKeyWithValue(keyring.AESKeyKey(ns, name), []byte(fmt.Sprintf("aes-key-%02d", i))))
		}
	})
})
