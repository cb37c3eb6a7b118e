// Package gateway holds what every mail protocol of pipegate shares before
// login, so that a rule about accounts is written once and holds for IMAP
// and every protocol after it: the account name is decided here, from the
// decoded credentials (package gateway/sasl), and that one byte string is
// routed, given to the route source, counted by the penalty and limits,
// logged, and sent to the backend.
//
//	rules := gateway.AccountRules{Format: gateway.FormatLowercase}
//	login, err := rules.Decide(creds) // creds from sasl.Decode or a protocol's own LOGIN/USER+PASS
//	var refused *gateway.Refused
//	if errors.As(err, &refused) {
//		// answer with the protocol's refusal and refused.Text, through the
//		// same failure path (penalty, delay floor) as a wrong password
//	}
//	route.Request{Account: login.Account, Password: login.Password, ...}
//
// Failures answers every failed login on one schedule, whatever its cause,
// so that timing tells a wrong password, an unknown account and a domain no
// route serves apart no better than the texts do.
package gateway
