// A relying party written against Go's standard library only (crypto/x509, crypto/tls,
// net/http): tests/interop/go.rs writes this file into a temporary module, builds it with
// `go build` (no network) and runs its subcommands. Every subcommand prints one JSON
// object on success and exits 1 with the error on stderr otherwise.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// id-credmint-governance (src/issue/governance.rs).
var governanceOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 1}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "interop: "+format+"\n", args...)
	os.Exit(1)
}

func emit(v interface{}) {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		fail("%v", err)
	}
}

func readCerts(path string) []*x509.Certificate {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			fail("parse %s: %v", path, err)
		}
		out = append(out, cert)
	}
	if len(out) == 0 {
		fail("%s: no certificate", path)
	}
	return out
}

func pool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

type certReport struct {
	Subject            string     `json:"subject"`
	Issuer             string     `json:"issuer"`
	URIs               []string   `json:"uris"`
	DNSNames           []string   `json:"dns_names"`
	OCSP               []string   `json:"ocsp"`
	CRL                []string   `json:"crl"`
	ClientAuth         bool       `json:"client_auth"`
	GovernanceHex      string     `json:"governance_hex"`
	GovernanceCritical bool       `json:"governance_critical"`
	Unhandled          int        `json:"unhandled_critical"`
	Chains             [][]string `json:"chains,omitempty"`
}

func describe(c *x509.Certificate) certReport {
	r := certReport{
		Subject:   c.Subject.String(),
		Issuer:    c.Issuer.String(),
		DNSNames:  c.DNSNames,
		OCSP:      c.OCSPServer,
		CRL:       c.CRLDistributionPoints,
		Unhandled: len(c.UnhandledCriticalExtensions),
	}
	for _, u := range c.URIs {
		r.URIs = append(r.URIs, u.String())
	}
	for _, eku := range c.ExtKeyUsage {
		if eku == x509.ExtKeyUsageClientAuth {
			r.ClientAuth = true
		}
	}
	for _, ext := range c.Extensions {
		if ext.Id.Equal(governanceOID) {
			r.GovernanceHex = hex.EncodeToString(ext.Value)
			r.GovernanceCritical = ext.Critical
		}
	}
	return r
}

// verify ROOTS CHAIN: the first certificate of CHAIN verified for clientAuth under ROOTS,
// the rest of CHAIN as intermediates.
func verify(roots, chain string) {
	certs := readCerts(chain)
	chains, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         pool(readCerts(roots)),
		Intermediates: pool(certs[1:]),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		fail("verify: %v", err)
	}
	r := describe(certs[0])
	for _, ch := range chains {
		var names []string
		for _, c := range ch {
			names = append(names, hex.EncodeToString(c.SubjectKeyId))
		}
		r.Chains = append(r.Chains, names)
	}
	emit(r)
}

// parse CERT: x509.ParseCertificate only.
func parse(path string) {
	emit(describe(readCerts(path)[0]))
}

func clientConfig(chain, key string, roots *x509.CertPool) *tls.Config {
	pair, err := tls.LoadX509KeyPair(chain, key)
	if err != nil {
		fail("client key pair: %v", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots}
}

// post ROOTS CHAIN KEY URL BODY: an mTLS POST with an ordinary tls.Config.
func post(roots, chain, key, url, body string) {
	cfg := clientConfig(chain, key, pool(readCerts(roots)))
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: cfg},
		Timeout:   20 * time.Second,
	}
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		fail("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		fail("read: %v", err)
	}
	emit(map[string]interface{}{"status": resp.StatusCode, "body": string(text)})
}

// serve-and-dial CA CHAIN KEY: a Go TLS server on 127.0.0.1 that requires and verifies
// client certificates under CA (tls.RequireAndVerifyClientCert), dialled by a Go client
// presenting CHAIN/KEY. The server's own certificate is an ephemeral self-signed one.
func serveAndDial(ca, chain, key string) {
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail("%v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "interop server"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &serverKey.PublicKey, serverKey)
	if err != nil {
		fail("%v", err)
	}
	serverCert, err := x509.ParseCertificate(der)
	if err != nil {
		fail("%v", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: serverKey}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool(readCerts(ca)),
	})
	if err != nil {
		fail("%v", err)
	}
	server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := r.TLS.PeerCertificates[0]
		var uris []string
		for _, u := range peer.URIs {
			uris = append(uris, u.String())
		}
		json.NewEncoder(w).Encode(map[string]interface{}{
			"peer_uris":    uris,
			"verified_len": len(r.TLS.VerifiedChains[0]),
			"tls_version":  r.TLS.Version,
		})
	}), ErrorLog: nil}
	go server.Serve(ln)
	defer server.Close()

	cfg := clientConfig(chain, key, pool([]*x509.Certificate{serverCert}))
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: cfg},
		Timeout:   20 * time.Second,
	}
	resp, err := client.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		fail("mTLS GET: %v", err)
	}
	defer resp.Body.Close()
	var seen map[string]interface{}
	if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil {
		fail("decode: %v", err)
	}
	seen["status"] = resp.StatusCode
	emit(seen)
}

func main() {
	args := os.Args[1:]
	need := func(n int) {
		if len(args) != n+1 {
			fail("%s wants %d arguments", args[0], n)
		}
	}
	if len(args) == 0 {
		fail("usage: interop verify|parse|post|serve-and-dial ...")
	}
	switch args[0] {
	case "verify":
		need(2)
		verify(args[1], args[2])
	case "parse":
		need(1)
		parse(args[1])
	case "post":
		need(5)
		post(args[1], args[2], args[3], args[4], args[5])
	case "serve-and-dial":
		need(3)
		serveAndDial(args[1], args[2], args[3])
	default:
		fail("unknown subcommand %q", args[0])
	}
}
