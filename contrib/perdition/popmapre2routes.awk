#!/usr/bin/awk -f
# popmapre2routes.awk converts a Perdition regular-expression popmap
# (popmap.re, -M libperditiondb_posix_regex.so: one REGEX: [USER@]HOST[:PORT]
# per line) to a pipegate routes file of match: rules (docs/routing.md,
# "file").
#
#   awk -v scheme=imap -f popmapre2routes.awk /etc/perdition/popmap.re > routes.yaml
#   pipegate check-config /etc/pipegate/mail.yaml
#
# scheme is the backend's (imap, imaps, imap+starttls, pop3, pop3s, ...;
# default imap). Read as Perdition reads it: a # starts a comment, the
# regex ends at the line's first ':', blanks before the regex and the
# value are skipped. Perdition tries the last line first; pipegate the
# first match rule first: the rules come out in reverse order. $0 to $9
# stay as they are (pipegate fills them the same way); a value
# "user@host" (the last '@') becomes the rule's login, its '%' doubled.
# A regex not anchored with ^ is refused: Perdition puts the part of the
# name before the match in front of the server, which pipegate does not.
# Lines that cannot be converted are named on stderr; the rest are
# converted and the exit status is 1. A line whose regex a later line
# repeats is never used by Perdition: it is dropped, with a note on
# stderr (pipegate refuses a regex given twice).
function q(s) { gsub(/'/, "''", s); return "'" s "'" }  # a YAML single-quoted string
function refuse(why) { printf "popmapre2routes: line %d: %s: %s\n", NR, why, line > "/dev/stderr"; bad = 1 }
BEGIN { if (scheme == "") scheme = "imap" }
{
  line = $0
  if ((i = index(line, "\r")) > 0) line = substr(line, 1, i - 1)
  if ((i = index(line, "#")) > 0) line = substr(line, 1, i - 1)
  if (line ~ /^[ \t]*$/) next
  i = index(line, ":")
  if (i == 0) { refuse("no REGEX: SERVER"); next }
  re = substr(line, 1, i - 1); val = substr(line, i + 1)
  sub(/^[ \t]+/, "", re); sub(/^[ \t]+/, "", val); sub(/[ \t]+$/, "", val)
  if (re == "" || val == "") { refuse("no REGEX: SERVER"); next }
  if (re !~ /^\^/) {
    refuse("not anchored with ^: Perdition puts the part of the name before the match in front of the server; write this rule by hand")
    next
  }
  login = ""
  if (match(val, /.*@/)) { login = substr(val, 1, RLENGTH - 1); val = substr(val, RLENGTH + 1) }
  gsub(/%/, "%%", login)
  n++; res[n] = re; host[n] = val; user[n] = login; from[n] = NR
}
END {
  print "# Converted from a Perdition popmap.re by popmapre2routes.awk: its last"
  print "# line comes first here, as pipegate tries match rules in file order."
  if (n == 0) print "routes: []"
  else print "routes:"
  for (k = n; k > 0; k--) {
    if (res[k] in seen) {
      printf "popmapre2routes: line %d: dropped: line %d has the same regex, and Perdition uses the last\n", from[k], seen[res[k]] > "/dev/stderr"
      continue
    }
    seen[res[k]] = from[k]
    print "  - match: " q(res[k]) "   # line " from[k]
    print "    backend: " q(scheme "://" host[k])
    if (user[k] != "") print "    login: " q(user[k])
  }
  exit bad
}
