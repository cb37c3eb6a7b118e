package yamlconf_test

import (
	"fmt"
	"time"

	"github.com/pipegate/pipegate/internal/yamlconf"
)

func ExampleDecode() {
	var fc struct {
		Listen      string              `yaml:"listen"`
		DialTimeout yamlconf.Duration   `yaml:"dial_timeout"`
		TLS         *yamlconf.ServerTLS `yaml:"tls"`
	}
	_, err := yamlconf.Decode("proxy.yaml", []byte("listen: 127.0.0.1:143\ndial-timeout: 5s\ntls: {cert: a.pem, kee: b.pem}\n"), &fc)
	fmt.Println(err)

	doc, err := yamlconf.Decode("proxy.yaml", []byte("listen: 127.0.0.1:143\ntls: {cert: /nonexistent/a.pem}\n"), &fc)
	if err != nil {
		panic(err)
	}
	fmt.Println(fc.DialTimeout.Or(5 * time.Second))
	if _, err := fc.TLS.Files(doc, "tls"); err != nil {
		fmt.Println(err)
	}
	// Output:
	// proxy.yaml:2: dial-timeout: renamed to dial_timeout
	// proxy.yaml:3: tls.kee: unknown field (want one of: cert, certs, client_ca, curves, key, ticket_keys)
	// 5s
	// proxy.yaml:2: tls.key: missing (a certificate without its key)
	// proxy.yaml:2: tls.cert: open /nonexistent/a.pem: no such file or directory
}
