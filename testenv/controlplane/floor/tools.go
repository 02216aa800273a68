//go:build tools

// Package tools pins the kube-apiserver of the oldest Kubernetes minor the
// chart supports (its kubeVersion floor), on which the CRD's admission
// cases are checked too.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
