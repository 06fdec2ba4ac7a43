/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package e2e

import (
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/wechat-operator/wechat-operator/test/kustomize"
)

var _ = Describe("config/sharded (the manager as shards)", func() {
	var set appsv1.StatefulSet
	BeforeEach(func() {
		objs, err := kustomize.Render(filepath.Join("..", "..", "config", "sharded"))
		Expect(err).NotTo(HaveOccurred())
		Expect(kustomize.Find(objs, "Deployment", managerDeployment)).To(BeNil(), "the StatefulSet replaces the Deployment")
		u := kustomize.Find(objs, "StatefulSet", managerDeployment)
		Expect(u).NotTo(BeNil())
		Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &set)).To(Succeed())
	})

	It("names each shard after its pod, and runs the pod config/manager runs", func() {
		c := set.Spec.Template.Spec.Containers[0]
		Expect(c.Args).To(ContainElement("--shard=$(POD_NAME)"))
		Expect(c.Env).To(ContainElement(HaveField("ValueFrom.FieldRef.FieldPath", "metadata.name")))
		Expect(*set.Spec.Replicas).To(BeNumerically(">=", 2))
		Expect(set.Spec.PodManagementPolicy).To(Equal(appsv1.ParallelPodManagement), "a shard waits for no other to start")
		want := deployment(managerDeployment).Spec.Template.Spec
		got := set.Spec.Template.Spec.DeepCopy()
		got.Containers[0].Args = withoutElement(got.Containers[0].Args, "--shard=$(POD_NAME)")
		got.Containers[0].Env = got.Containers[0].Env[1:]
		Expect(*got).To(Equal(want), "manager_statefulset.yaml has drifted from config/manager's pod")
	})

	It("is accepted by the API server, and its pods by Pod Security", func() {
		s := set.DeepCopy()
		s.Namespace = operatorNamespace
		Expect(k8sClient.Create(ctx, s, client.DryRunAll)).To(Succeed())
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: set.Name + "-", Namespace: operatorNamespace,
			Labels: set.Spec.Template.Labels}, Spec: *set.Spec.Template.Spec.DeepCopy()}
		Expect(k8sClient.Create(ctx, pod, client.DryRunAll)).To(Succeed())
	})
})

func withoutElement(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}
