// Command vcsim serves a simulated vCenter (govmomi's simulator package, from Debian's
// golang-github-vmware-govmomi-dev) for the vmware store's tests: the vSphere SOAP API on /sdk and the
// datastores' HTTP file interface on /folder, over TLS with a certificate made at start-up.
//
// Debian ships govmomi's library without its vcsim command, so this is a small one of our own.
// It prints one line, "ready <sdk url> <certificate file>", once it serves, and removes its
// datastore folders when it gets SIGTERM or SIGINT. The datastores live under $TMPDIR.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

// selfSigned makes a key and a self-signed certificate for the loopback names, and writes the
// certificate (PEM) to certFile for the clients to trust. govmomi's built-in test certificate has a
// 1024-bit RSA key, which OpenSSL at its default security level refuses.
func selfSigned(certFile string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	template := x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "vcsim"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * 365 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, &template, &template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}

func main() {
	listen := flag.String("l", "127.0.0.1:0", "address to listen on")
	username := flag.String("username", "user", "the one user that may log in")
	password := flag.String("password", "pass", "its password")
	certFile := flag.String("cert", "", "write the server certificate (PEM) here; empty: plain http")
	datacenters := flag.Int("dc", 1, "datacenters (DC0, DC1, ...)")
	datastores := flag.Int("ds", 1, "datastores in each datacenter (LocalDS_0, LocalDS_1, ...)")
	flag.Parse()

	model := simulator.VPX()
	model.Datacenter = *datacenters
	model.Datastore = *datastores
	model.Machine = 0 // no virtual machines: the image tests only need datastores
	if err := model.Create(); err != nil {
		log.Fatalf("vcsim: cannot create the inventory: %s", err)
	}
	defer model.Remove()

	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	if *certFile != "" {
		cert, err := selfSigned(*certFile)
		if err != nil {
			log.Fatalf("vcsim: cannot make a certificate: %s", err)
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	server := model.Service.NewServer()
	defer server.Close()

	sdk := *server.URL
	sdk.User = nil
	fmt.Printf("ready %s %s\n", sdk.String(), *certFile)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
