// Package deploy embeds the host installation files that `gpu-nri install`
// writes: the systemd unit for external mode and the default host
// configuration (also the pre-registered plugin's conf.d file). The
// Kubernetes manifests, Helm chart, runtime snippets and image build file
// beside it are not embedded; test/k8s checks all of them.
package deploy

import _ "embed" // for go:embed

// SystemdUnit is deploy/systemd/gpu-nri.service.
//
//go:embed systemd/gpu-nri.service
var SystemdUnit []byte

// SystemdLibraryDirDropIn is deploy/systemd/library-dir.conf, the unit's
// drop-in when the configuration sets injection.libraryDir.
//
//go:embed systemd/library-dir.conf
var SystemdLibraryDirDropIn []byte

// HostConfig is deploy/host/config.yaml, the configuration installed when
// none is given.
//
//go:embed host/config.yaml
var HostConfig []byte
