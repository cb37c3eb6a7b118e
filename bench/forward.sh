#!/usr/bin/env bash
# Compares `pipegate forward` with HAProxy (TCP mode, splice, nbthread 1)
# and a naive Go forwarder (two io.Copy goroutines), all in one run on
# loopback, as ratios to a direct connection to the same server:
#   bulk 1-stream throughput up (client to server) and down, 64-byte
#   ping-pong p50 latency, short connections per second, TLS termination
#   1-stream throughput up and down (vs direct TLS), memory per idle
#   TLS-terminated connection. Beside each bulk figure, the CPU time (user
#   plus system, from /proc/PID/stat) of the forwarder process alone per GB
#   moved; beside the connection rate, its CPU time per connection and the
#   TCP segments the machine sent per connection (/proc/net/snmp).
# Forwarders run on one thread (GOMAXPROCS=1, nbthread 1). Needs the Debian
# package haproxy (apt-get install -y haproxy) and openssl.
#
#   bench/forward.sh              # REPS=3 DUR=1s N=3000 IDLE=1000 by default (a few minutes)
#   REPS=5 DUR=2s IDLE=2000 bench/forward.sh
#   ROWS="bulk bulkdown tls tlsdown" REPS=7 bench/forward.sh   # CPU-s/GB only
#   ROWS=conn REPS=9 BASE=/tmp/pipegate-before bench/forward.sh
# Each figure is the median of REPS rounds; within a round the targets run
# one after the other, in a rotating order. pg/ha is the median of each
# round's pipegate/haproxy ratio (base/pg likewise, with BASE): the load of
# a shared machine disturbs it less than the medians; the range in
# parentheses is its spread (min-max) over the rounds. ROWS picks rows (bulk bulkdown ping conn tls
# tlsdown idle; default all). BASE adds a column for another pipegate binary (say, built before a
# change) run the same way, for before/after figures from one run;
# BASE_GO_ACCEPT=1 runs it with go_accept: true (the Go accept path; use
# BASE=bin/pipegate for the same binary). A BASE that predates the
# snake_case keys gets the kebab-case ones.
set -eu
cd "$(dirname "$0")/.."
command -v haproxy >/dev/null || { echo "forward.sh: haproxy not installed (apt-get install -y haproxy)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "forward.sh: openssl not installed" >&2; exit 1; }
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
DUR=${DUR:-1s}
N=${N:-3000}
IDLE=${IDLE:-1000}
REPS=${REPS:-3}
ROWS=${ROWS:-bulk bulkdown ping conn tls tlsdown idle}
BASE=${BASE:-}
BASE_GO_ACCEPT=${BASE_GO_ACCEPT:-}
[ -z "$BASE" ] || [ -x "$BASE" ] || { echo "forward.sh: BASE=$BASE is not an executable" >&2; exit 1; }

tmp=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

go build -o "$tmp/pipegate" ./cmd/pipegate
go build -o "$tmp/load" ./bench/forwardload
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/haproxy.pem"

base=$((12000 + $(od -An -N2 -tu2 /dev/urandom) % 18000)) # below the ephemeral range
port() { echo "127.0.0.1:$((base + $1))"; }
srv=$(port 0); srv_tls=$(port 1)
pg=$(port 2); pg_tls=$(port 3)
ha=$(port 4); ha_tls=$(port 5)
nv=$(port 6); nv_tls=$(port 7)
bs=$(port 8); bs_tls=$(port 9)

"$tmp/load" serve -plain "$srv" -tls "$srv_tls" -cert "$tmp/cert.pem" -key "$tmp/key.pem" & srvpid=$!; pids="$pids $srvpid"

# pipegate BINARY PLAIN TLS [EXTRA]: starts a forward process, its pid in
# $started; EXTRA goes into each forward's mapping (", go_accept: true").
pipegate() {
  cat >"$tmp/forward-$2.yaml" <<CFG
log_level: warn
forwards:
  - {name: plain, listen: "$2", to: ["$srv"]${4:-}}
  - {name: tls, listen: "$3", to: ["$srv"], tls: {cert: "$tmp/cert.pem", key: "$tmp/key.pem"}${4:-}}
CFG
  if ! "$1" check-config "$tmp/forward-$2.yaml" >/dev/null 2>&1; then # a binary from before snake_case
    cat >"$tmp/forward-$2.yaml" <<CFG
log-level: warn
forwards:
  - {name: plain, listen: "$2", to: ["$srv"]}
  - {name: tls, listen: "$3", to: ["$srv"], tls-cert: "$tmp/cert.pem", tls-key: "$tmp/key.pem"}
CFG
  fi
  GOMAXPROCS=1 "$1" forward --config "$tmp/forward-$2.yaml" & started=$!; pids="$pids $started"
}
pipegate "$tmp/pipegate" "$pg" "$pg_tls"; pgpid=$started
[ -z "$BASE" ] || { pipegate "$BASE" "$bs" "$bs_tls" "${BASE_GO_ACCEPT:+, go_accept: true}"; bspid=$started; }

cat >"$tmp/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 8000
    maxpipes 1000
    tune.ssl.default-dh-param 2048
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    option splice-auto
frontend plain
    bind $ha
    default_backend be
frontend tls
    bind $ha_tls ssl crt $tmp/haproxy.pem
    default_backend be
backend be
    server s1 $srv
CFG
haproxy -db -f "$tmp/haproxy.cfg" 2>"$tmp/haproxy.log" & hapid=$!; pids="$pids $hapid"

GOMAXPROCS=1 "$tmp/load" naive -listen "$nv" -to "$srv" & nvpid=$!; pids="$pids $nvpid"
GOMAXPROCS=1 "$tmp/load" naive -listen "$nv_tls" -to "$srv" -cert "$tmp/cert.pem" -key "$tmp/key.pem" & nvtlspid=$!; pids="$pids $nvtlspid"

# Wait (bounded) until every port accepts.
for a in "$srv" "$srv_tls" "$pg" "$pg_tls" "$ha" "$ha_tls" "$nv" "$nv_tls" ${BASE:+"$bs" "$bs_tls"}; do
  i=0
  until (exec 3<>"/dev/tcp/${a%:*}/${a#*:}") 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 200 ] || { echo "forward.sh: $a never listened" >&2; cat "$tmp/haproxy.log" >&2; exit 1; }
    sleep 0.05
  done
done

echo "forward.sh: $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(haproxy -v | head -1 | cut -d' ' -f1-3), REPS=$REPS DUR=$DUR N=$N IDLE=$IDLE${BASE:+ BASE=$BASE}"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
L="$tmp/load"
T="-tls -ca $tmp/cert.pem"
names=(direct pipegate haproxy naive ${BASE:+base})
nt=${#names[@]}
# row NAME UNIT CMD DIRECT PIPEGATE HAPROXY NAIVE [BASE]: REPS rounds, the
# targets in a different order each round; medians, their ratios to direct
# and pg/ha. With PIDS (the processes behind the targets, in that order) the
# command also gets -pid and prints a second figure, the CPU time of that
# process per connection or per GB (CPUUNIT), shown on a second line (for
# direct: the server's), with the spread (min-max) of pg/ha over the rounds.
row() {
  local name=$1 unit=$2 cmd=$3; shift 3
  local targets=("$@") pidof=(${PIDS:-}) fig=() cpu=() seg=() q=() cq=() bq=() bcq=() med=() out r i k v x
  for ((r = 0; r < REPS; r++)); do
    for ((i = 0; i < nt; i++)); do
      k=$(((i + r) % nt))
      x=""
      [ -z "${PIDS:-}" ] || x="-pid ${pidof[$k]}"
      v=($($L $cmd -addr "${targets[$k]}" $x))
      fig[r * nt + k]=${v[0]}
      cpu[r * nt + k]=${v[1]:-}
      seg[r * nt + k]=${v[2]:-}
    done
    q+=("$(ratio "${fig[r * nt + 1]}" "${fig[r * nt + 2]}")")
    cq+=("$(ratio "${cpu[r * nt + 1]}" "${cpu[r * nt + 2]}")")
    [ -z "$BASE" ] || bq+=("$(ratio "${fig[r * nt + 4]}" "${fig[r * nt + 1]}")")
    [ -z "$BASE" ] || bcq+=("$(ratio "${cpu[r * nt + 4]}" "${cpu[r * nt + 1]}")")
  done
  # column K of array FIG or CPU over the rounds
  col() { local -n a=$1; local vals=() r; for ((r = 0; r < REPS; r++)); do vals+=("${a[r * nt + $2]}"); done; median "${vals[@]}"; }
  for ((k = 0; k < nt; k++)); do med+=("$(col fig $k)"); done
  out=$(printf '%-26s %-8s' "$name" "$unit"; printf ' %9s' "${med[@]}"; printf '  ')
  for ((k = 1; k < nt; k++)); do out+=" ${names[k]} $(ratio "${med[k]}" "${med[0]}")x"; done
  echo "$out  pg/ha $(median "${q[@]}") ($(spread "${q[@]}"))${BASE:+  base/pg $(median "${bq[@]}") ($(spread "${bq[@]}"))}"
  [ -n "${PIDS:-}" ] || return 0
  med=(); for ((k = 0; k < nt; k++)); do med+=("$(col cpu $k)"); done
  printf '%-26s %-8s' "  CPU of the forwarder" "${CPUUNIT:-us/conn}"; printf ' %9s' "${med[@]}"
  echo "   (direct: the server's)  pg/ha $(median "${cq[@]}") ($(spread "${cq[@]}"))${BASE:+  base/pg $(median "${bcq[@]}") ($(spread "${bcq[@]}"))}"
  [ -n "${seg[0]:-}" ] || return 0
  med=(); for ((k = 0; k < nt; k++)); do med+=("$(col seg $k)"); done
  printf '%-26s %-8s' "  TCP segments (machine)" "seg/conn"; printf ' %9s' "${med[@]}"
  echo "   (both connections of a forwarded one, each segment counted once)"
}
# spread V...: min-max of the values
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }
has() { case " $ROWS " in *" $1 "*) return 0 ;; esac; return 1; }
printf '%-26s %-8s' metric unit; printf ' %9s' "${names[@]}"; echo "   medians of $REPS rounds; ratios to direct"
plainpids="$srvpid $pgpid $hapid $nvpid ${BASE:+$bspid}"
tlspids="$srvpid $pgpid $hapid $nvtlspid ${BASE:+$bspid}"
! has bulk || PIDS=$plainpids CPUUNIT=s/GB row "bulk 1 stream" MB/s "bulk -duration $DUR" "$srv" "$pg" "$ha" "$nv" ${BASE:+"$bs"}
! has bulkdown || PIDS=$plainpids CPUUNIT=s/GB row "bulk 1 stream down" MB/s "bulkdown -duration $DUR" "$srv" "$pg" "$ha" "$nv" ${BASE:+"$bs"}
! has ping || row "ping-pong 64B p50" us "pingpong -n $N" "$srv" "$pg" "$ha" "$nv" ${BASE:+"$bs"}
! has conn || PIDS=$plainpids row "short connections" conn/s "connrate -duration $DUR" "$srv" "$pg" "$ha" "$nv" ${BASE:+"$bs"}
! has tls || PIDS=$tlspids CPUUNIT=s/GB row "TLS termination 1 stream" MB/s "bulk $T -duration $DUR" "$srv_tls" "$pg_tls" "$ha_tls" "$nv_tls" ${BASE:+"$bs_tls"}
! has tlsdown || PIDS=$tlspids CPUUNIT=s/GB row "TLS termination down" MB/s "bulkdown $T -duration $DUR" "$srv_tls" "$pg_tls" "$ha_tls" "$nv_tls" ${BASE:+"$bs_tls"}
if has idle; then
  printf '%-26s %-8s %9s %9s %9s %9s' "idle TLS conn memory" KiB/conn - \
    "$($L idle $T -addr "$pg_tls" -n "$IDLE" -pid "$pgpid")" "$($L idle $T -addr "$ha_tls" -n "$IDLE" -pid "$hapid")" \
    "$($L idle $T -addr "$nv_tls" -n "$IDLE" -pid "$nvtlspid")"
  [ -z "$BASE" ] || printf ' %9s' "$($L idle $T -addr "$bs_tls" -n "$IDLE" -pid "$bspid")"
  echo "   ($IDLE connections, one round)"
fi
