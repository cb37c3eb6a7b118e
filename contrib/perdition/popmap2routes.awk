#!/usr/bin/awk -f
# popmap2routes.awk converts a Perdition popmap (the text its GDBM map is
# built from: one KEY:[USER@]HOST[:PORT] per line) to a pipegate routes
# file (docs/routing.md, "file").
#
#   awk -v scheme=imap -f popmap2routes.awk /etc/perdition/popmap > routes.yaml
#   pipegate check-config /etc/pipegate/mail.yaml
#
# scheme is the backend's (imap, imaps, imap+starttls, pop3, pop3s, ...;
# default imap). A key "@domain" (Perdition's --query_key '\u,\D\d')
# becomes a domain rule; a value "user@host" (-U/--username_from_database)
# becomes the rule's login. Blank lines and # comments are skipped.
function q(s) { gsub(/'/, "''", s); return "'" s "'" }  # a YAML single-quoted string
BEGIN { if (scheme == "") scheme = "imap"; print "routes:" }
{ sub(/\r$/, "") }
/^[ \t]*(#|$)/ { next }
{
  line = $0
  sub(/[ \t]+$/, "", line)
  i = index(line, ":")
  if (i < 2) { printf "popmap2routes: line %d: no KEY:HOST: %s\n", NR, line > "/dev/stderr"; bad = 1; next }
  key = substr(line, 1, i - 1); val = substr(line, i + 1)
  login = ""
  if ((j = index(val, "@")) > 0) { login = substr(val, 1, j - 1); val = substr(val, j + 1) }
  if (key ~ /^@/) print "  - domain: " q(substr(key, 2))
  else            print "  - account: " q(key)
  print "    backend: " q(scheme "://" val)
  if (login != "") print "    login: " q(login)
}
END { exit bad }
