package route

import (
	"fmt"
	"strings"
)

// SplitAccount splits an account "local@domain" at its last '@'. An account
// without '@' has an empty domain.
func SplitAccount(account string) (local, domain string) {
	i := strings.LastIndexByte(account, '@')
	if i < 0 {
		return account, ""
	}
	return account[:i], account[i+1:]
}

// Expand fills a template the way Dovecot and nginx configs do:
//
//	%u  the whole account     alice@a.test
//	%n  the local part        alice
//	%d  the domain            a.test
//	%%  a percent sign
//
// If escape is not nil it is applied to each substituted value (for
// example ldap.EscapeFilter for an LDAP filter). Any other %x is an error,
// so a template can be checked once at configuration time with
// Expand(tmpl, "user@example.org", nil).
func Expand(tmpl, account string, escape func(string) string) (string, error) {
	if !strings.Contains(tmpl, "%") {
		return tmpl, nil
	}
	local, domain := SplitAccount(account)
	var b strings.Builder
	b.Grow(len(tmpl) + len(account))
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(tmpl) {
			return "", fmt.Errorf("template %q: lone %% at the end (write %%%% for a percent sign)", tmpl)
		}
		i++
		var v string
		switch tmpl[i] {
		case 'u':
			v = account
		case 'n':
			v = local
		case 'd':
			v = domain
		case '%':
			b.WriteByte('%')
			continue
		default:
			return "", fmt.Errorf("template %q: unknown %%%c (want %%u, %%n, %%d or %%%%)", tmpl, tmpl[i])
		}
		if escape != nil {
			v = escape(v)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
