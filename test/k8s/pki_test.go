//go:build k8s

package k8s

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// leafCert is one certificate the cluster's components present or trust.
type leafCert struct {
	name     string // file name stem: <name>.crt, <name>.key
	cn       string
	org      string
	server   bool // serverAuth (else clientAuth)
	dnsNames []string
	ips      []net.IP
}

// writePKI writes a test CA, the components' certificates (ECDSA P-256, the
// names and usages kubeadm would give them) and the service-account key pair
// (RSA 2048) into dir, as PEM files.
func writePKI(dir, node string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: CA key: %w", err)
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gpu-nri-test-ca"},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("pki: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("pki: CA certificate: %w", err)
	}
	if err := writePEM(filepath.Join(dir, "ca.crt"), "CERTIFICATE", caDER); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "ca.key"), caKey); err != nil {
		return err
	}
	loop := []net.IP{net.ParseIP("127.0.0.1")}
	leaves := []leafCert{
		{name: "apiserver", cn: "kube-apiserver", server: true,
			dnsNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local", "localhost", node},
			ips: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(serviceIP)}},
		{name: "admin", cn: "gpu-nri-admin", org: "system:masters"},
		{name: "kcm", cn: "system:kube-controller-manager"},
		{name: "scheduler", cn: "system:kube-scheduler"},
		{name: "kubelet", cn: "system:node:" + node, org: "system:nodes"},
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", org: "system:masters"},
		{name: "kubelet-serving", cn: node, server: true, dnsNames: []string{node, "localhost"}, ips: loop},
	}
	for i, l := range leaves {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("pki: %s key: %w", l.name, err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(int64(i + 2)),
			Subject:               pkix.Name{CommonName: l.cn},
			NotBefore:             now,
			NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			BasicConstraintsValid: true,
			DNSNames:              l.dnsNames,
			IPAddresses:           l.ips,
		}
		if l.org != "" {
			tmpl.Subject.Organization = []string{l.org}
		}
		if l.server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("pki: %s certificate: %w", l.name, err)
		}
		if err := writePEM(filepath.Join(dir, l.name+".crt"), "CERTIFICATE", der); err != nil {
			return err
		}
		if err := writeKey(filepath.Join(dir, l.name+".key"), key); err != nil {
			return err
		}
	}
	sa, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("pki: service-account key: %w", err)
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), sa); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return fmt.Errorf("pki: service-account public key: %w", err)
	}
	return writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: %s: %w", path, err)
	}
	return writePEM(path, "PRIVATE KEY", der)
}

func writePEM(path, typ string, der []byte) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// writeKubeconfig writes a kubeconfig for user (its certificate pki/<user>.crt)
// talking to the test API server.
func writeKubeconfig(path, pki, user, server string) error {
	text := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: t, cluster: {server: %q, certificate-authority: %q}}]
users: [{name: %s, user: {client-certificate: %q, client-key: %q}}]
contexts: [{name: t, context: {cluster: t, user: %s}}]
current-context: t
`, server, filepath.Join(pki, "ca.crt"), user, filepath.Join(pki, user+".crt"), filepath.Join(pki, user+".key"), user)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", user, err)
	}
	return nil
}

// TestPKI checks the certificates the cluster runs on: each chains to the CA
// with the usage and names its component needs.
func TestPKI(t *testing.T) {
	dir := t.TempDir()
	if err := writePKI(dir, "gpu-node"); err != nil {
		t.Fatal(err)
	}
	read := func(name string) *x509.Certificate {
		b, err := os.ReadFile(filepath.Join(dir, name+".crt"))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s.crt: no PEM block", name)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	roots := x509.NewCertPool()
	roots.AddCert(read("ca"))
	for _, tc := range []struct {
		name, dns, cn, org string
		usage              x509.ExtKeyUsage
	}{
		{name: "apiserver", dns: "kubernetes.default.svc", cn: "kube-apiserver", usage: x509.ExtKeyUsageServerAuth},
		{name: "kubelet-serving", dns: "gpu-node", cn: "gpu-node", usage: x509.ExtKeyUsageServerAuth},
		{name: "admin", cn: "gpu-nri-admin", org: "system:masters", usage: x509.ExtKeyUsageClientAuth},
		{name: "kubelet", cn: "system:node:gpu-node", org: "system:nodes", usage: x509.ExtKeyUsageClientAuth},
		{name: "kcm", cn: "system:kube-controller-manager", usage: x509.ExtKeyUsageClientAuth},
		{name: "scheduler", cn: "system:kube-scheduler", usage: x509.ExtKeyUsageClientAuth},
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", org: "system:masters", usage: x509.ExtKeyUsageClientAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := read(tc.name)
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.dns, KeyUsages: []x509.ExtKeyUsage{tc.usage}}); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if c.Subject.CommonName != tc.cn {
				t.Fatalf("CN %q, want %q", c.Subject.CommonName, tc.cn)
			}
			var org string
			if len(c.Subject.Organization) > 0 {
				org = c.Subject.Organization[0]
			}
			if org != tc.org {
				t.Fatalf("O %q, want %q", org, tc.org)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "sa.pub")); err != nil {
		t.Fatal(err)
	}
}
