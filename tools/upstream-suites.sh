#!/bin/sh
# Manual compatibility check (needs the suites' sources, so not part of
# `make check`): run the unmodified upstream test suites of the Python
# clients greenstalk and pystalk against this server and against stock
# beanstalkd, in memory mode and with -b DIR, and print the counts.
#
#   tools/upstream-suites.sh GREENSTALK_DIR PYSTALK_DIR [OURS [STOCK]]
#
# or set GREENSTALK_DIR, PYSTALK_DIR, BEANSTALKD (ours, default ./beanstalkd)
# and STOCK_BEANSTALKD (default /usr/bin/beanstalkd). An empty suite dir
# skips that suite. MODES (default "memory store"), PYTHON (default
# /usr/bin/python3: Debian's, which has the suites' dependencies) and
# LOGDIR (default a new temporary dir, kept) may be set too.
# Needs: apt-get install beanstalkd python3-pytest python3-yaml python3-attr
#        python3-pytest-mock
# Both suites start their own daemon through $BEANSTALKD_PATH: greenstalk
# always on 127.0.0.1:4444 and unix:/tmp/greenstalk-test.sock (hardcoded, so
# only one greenstalk run per machine at a time), pystalk on a free port and
# always with -b. A shim put in BEANSTALKD_PATH drops -b (memory) or adds one
# (store) and execs the daemon, so the suites' signals reach it.
# Exit status: 0 when every run against ours passed with no failure or error.
set -u
GREENSTALK_DIR=${1-${GREENSTALK_DIR-}}
PYSTALK_DIR=${2-${PYSTALK_DIR-}}
OURS=${3-${BEANSTALKD:-./beanstalkd}}
STOCK=${4-${STOCK_BEANSTALKD:-/usr/bin/beanstalkd}}
MODES=${MODES:-memory store}
PYTHON=${PYTHON:-/usr/bin/python3}
LOGDIR=${LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/upstream-suites.XXXXXX")}

die() { echo "upstream-suites: $*" >&2; exit 2; }
[ -n "$GREENSTALK_DIR$PYSTALK_DIR" ] ||
    die "usage: $0 GREENSTALK_DIR PYSTALK_DIR [OURS [STOCK]]"
for b in "$OURS" "$STOCK"; do [ -x "$b" ] || die "not executable: $b"; done
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
OURS=$(abs "$OURS") STOCK=$(abs "$STOCK")
"$PYTHON" -c 'import pytest, yaml, attr, pytest_mock' 2>/dev/null ||
    die "$PYTHON lacks pytest/yaml/attr/pytest_mock (see Needs: above)"
mkdir -p "$LOGDIR" || exit 2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/upstream-shim.XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

cat >"$WORK/shim" <<'EOF'
#!/bin/sh
n=$#; have_b=
while [ $n -gt 0 ]; do
  a=$1; shift; n=$((n-1))
  if [ "$a" = -b ]; then
    have_b=1; d=$1; shift; n=$((n-1))
    [ "$US_MODE" = store ] && set -- "$@" -b "$d"
  else set -- "$@" "$a"; fi
done
[ "$US_MODE" = store ] && [ -z "$have_b" ] &&
  set -- -b "$(mktemp -d "$US_WORK/wal.XXXXXX")" "$@"
exec "$US_BIN" "$@"
EOF
chmod +x "$WORK/shim"

echo "python: $("$PYTHON" --version 2>&1), pytest $("$PYTHON" -c 'import pytest; print(pytest.__version__)')"
echo "ours:  $OURS ($("$OURS" -v 2>&1 | head -n1))"
echo "stock: $STOCK ($("$STOCK" -v 2>&1 | head -n1))"
echo "logs:  $LOGDIR"
printf '%-10s %-12s %-6s %-6s %6s %6s %7s %6s\n' \
    suite commit server mode passed failed skipped errors
status=0
run() { # suite dir pythonpath server-name binary mode
    log=$LOGDIR/$1-$4-$6.log
    if [ "$1" = greenstalk ] && ! "$PYTHON" - <<'EOF'
import os, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", 4444))
except OSError: sys.exit("127.0.0.1:4444 is busy; greenstalk hardcodes it")
u = socket.socket(socket.AF_UNIX)
if u.connect_ex("/tmp/greenstalk-test.sock") == 0:
    sys.exit("/tmp/greenstalk-test.sock is in use; greenstalk hardcodes it")
EOF
    then status=1; return; fi
    (cd "$2" && US_BIN=$5 US_MODE=$6 US_WORK=$WORK BEANSTALKD_PATH=$WORK/shim \
        PYTHONPATH=$3 timeout 900 "$PYTHON" -m pytest -q -rfEs \
        -p no:cacheprovider tests) >"$log" 2>&1
    line=$(grep -E '^=* ?[0-9]+ (passed|failed|error|skipped).* in [0-9.]+s' \
        "$log" | tail -n1)
    c() { echo "$line" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || echo 0; }
    p=$(c passed) f=$(c failed) s=$(c skipped) e=$(c error)
    [ -n "$line" ] || { p=- f=- s=- e=-; }
    printf '%-10s %-12s %-6s %-6s %6s %6s %7s %6s\n' "$1" \
        "$(git -C "$2" rev-parse --short=12 HEAD 2>/dev/null || echo '?')" \
        "$4" "$6" "$p" "$f" "$s" "$e"
    if [ "$4" = ours ] && { [ -z "$line" ] || [ "$f$e" != 00 ]; }; then
        status=1; fi
}
for mode in $MODES; do
    for srv in ours stock; do
        [ $srv = ours ] && bin=$OURS || bin=$STOCK
        [ -z "$GREENSTALK_DIR" ] || run greenstalk "$GREENSTALK_DIR" src $srv "$bin" "$mode"
        [ -z "$PYSTALK_DIR" ] || run pystalk "$PYSTALK_DIR" . $srv "$bin" "$mode"
    done
done
exit $status
