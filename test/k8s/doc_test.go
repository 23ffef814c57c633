// Package k8s tests gpu-nri's deployment files without a cluster: every
// Kubernetes manifest (kustomize base, both overlays) and the Helm chart's
// output decode strictly into the Kubernetes API types, the chart renders
// the same objects as the kustomize overlays for default values, the
// configuration inside each ConfigMap is valid and matches the pod's mounts
// and ports, and the runtime drop-ins parse as TOML with the keys the docs
// promise. With the build tag k8s (`make test-k8s`, root), TestKubernetes
// proves the same files on a real single-node cluster it starts itself.
package k8s
