#!/usr/bin/env bash
# bench.sh - compare two beanstalkd-compatible servers with bsbench.
#
#   tools/bench.sh OURS_BINARY STOCK_BINARY [quick]
#
# Every run gets a freshly started server on a free loopback port; the
# two servers alternate (ours, stock, ours, stock, ...) with identical
# bsbench flags.  The table on stdout gives, per workload, the median
# ops/s of each server, the ratio ours/stock, and the median p99 latency
# with its ratio.  Progress and per-run figures go to stderr.
#
# Environment:
#   BENCH_SERVER_ARGS  extra flags for both servers (default: none, i.e.
#                      memory mode).  A "-b" in them gets a fresh temporary
#                      directory for every run, removed afterwards; "-b DIR"
#                      makes those directories inside DIR.
#   BENCH_WORKLOADS    workloads to run (default: "put reserve pipeline
#                      pipelined-put connections tubes"; "scale" is extra)
#   BENCH_ROUNDS       runs per server and workload (default 5; quick: 3)
#   BENCH_CLIENT_ARGS  extra bsbench flags for every run (e.g. "-s 1024")
#   BENCH_RAW          file to append every raw bsbench result line to
#   BSBENCH            the bsbench binary (default ./bsbench, else built
#                      from tools/bsbench*.c into a temporary directory)
#
# Exit status: 0 if every run succeeded, 1 if any run failed, 2 on usage.

set -u

usage() {
    echo "usage: $0 OURS_BINARY STOCK_BINARY [quick]" >&2
    exit 2
}

if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
OURS=$1
STOCK=$2
MODE=${3:-full}
case $MODE in full | quick) ;; *) usage ;; esac
for b in "$OURS" "$STOCK"; do
    if [ ! -x "$b" ] || [ -d "$b" ]; then
        echo "bench: not an executable: $b" >&2
        exit 2
    fi
done

if [ "$MODE" = quick ]; then ROUNDS=${BENCH_ROUNDS:-3}; else ROUNDS=${BENCH_ROUNDS:-5}; fi
WORKLOADS=${BENCH_WORKLOADS:-"put reserve pipeline pipelined-put connections tubes"}
read -r -a SERVER_ARGS <<<"${BENCH_SERVER_ARGS:-}"
read -r -a CLIENT_ARGS <<<"${BENCH_CLIENT_ARGS:-}"
RUN_TIMEOUT=90 # seconds; a hung run is killed and counted as failed

# ---------------------------------------------------------------- cleanup

SERVER_PID=""
CLIENT_PID=""
WAL_DIR=""
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench.XXXXXX") || exit 1

stop_pid() { # stop_pid PID: TERM, then KILL after 5 s
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || {
        wait "$pid" 2>/dev/null
        return 0
    }
    for ((i = 0; i < 250; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.02
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    trap - EXIT INT TERM HUP
    [ -n "$CLIENT_PID" ] && stop_pid "$CLIENT_PID"
    [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"
    CLIENT_PID=""
    SERVER_PID=""
    [ -n "$WAL_DIR" ] && rm -rf "$WAL_DIR"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT
trap 'echo "bench: terminated" >&2; exit 143' TERM HUP

# ---------------------------------------------------------------- bsbench

here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${BSBENCH:-}" ]; then
    BS=$BSBENCH
elif [ -x ./bsbench ]; then
    BS=./bsbench
else
    BS=$WORK/bsbench
    echo "bench: building bsbench into $BS" >&2
    cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE "$here"/bsbench*.c -o "$BS" -lpthread || exit 1
fi

# Many connections on both sides: lift the open-file limit if we may.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then hard=65536; fi
[ "$hard" -gt 65536 ] && hard=65536
ulimit -n "$hard" 2>/dev/null || true

# ---------------------------------------------------------------- workloads

# flags_for WORKLOAD MODE: the bsbench flags.  Each run does -n operations
# or lasts -t seconds, whichever ends first: -t bounds the time of a slow
# server's run, -n bounds the memory of a fast server's run.  connections
# uses -G: all connections are open before timing starts, so both servers
# are timed with the same number of active clients (a server that accepts
# more slowly would otherwise be timed with fewer of them, and show a
# shorter tail for serving fewer).
flags_for() {
    case $2:$1 in
    full:put) echo "-c 50 -n 300000 -t 3" ;;
    full:reserve) echo "-c 10 -n 100000 -t 3" ;;
    full:pipeline) echo "-c 10 -n 200000 -t 3" ;;
    full:pipelined-put) echo "-c 2 -P 100 -n 1000000 -t 3" ;;
    full:connections) echo "-c 1000 -n 30000 -t 3 -G" ;;
    full:tubes) echo "-c 10 -T 50 -n 100000 -t 3" ;;
    full:scale) echo "-c 1 -T 1000 -D 10 -I 1000 -n 30000 -t 3" ;;
    quick:put) echo "-c 50 -n 60000 -t 1" ;;
    quick:reserve) echo "-c 10 -n 30000 -t 1" ;;
    quick:pipeline) echo "-c 10 -n 50000 -t 1" ;;
    quick:pipelined-put) echo "-c 2 -P 100 -n 300000 -t 1" ;;
    quick:connections) echo "-c 500 -n 10000 -t 1 -G" ;;
    quick:tubes) echo "-c 10 -T 50 -n 30000 -t 1" ;;
    quick:scale) echo "-c 1 -T 300 -D 10 -I 300 -n 10000 -t 1" ;;
    *) return 1 ;;
    esac
}

for w in $WORKLOADS; do
    flags_for "$w" "$MODE" >/dev/null || {
        echo "bench: unknown workload: $w" >&2
        exit 2
    }
done

# ---------------------------------------------------------------- servers

port_free() { # port_free PORT: nothing listens on it
    if command -v ss >/dev/null 2>&1; then
        [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
    else
        ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_server BINARY LOG: sets SERVER_PID, PORT (and WAL_DIR for -b).
start_server() {
    local bin=$1 log=$2 try i args a next parent
    for ((try = 0; try < 10; try++)); do
        PORT=$((20000 + RANDOM % 12000)) # below the usual ephemeral range
        port_free "$PORT" || continue
        args=()
        WAL_DIR=""
        for ((i = 0; i < ${#SERVER_ARGS[@]}; i++)); do
            a=${SERVER_ARGS[i]}
            if [ "$a" = -b ]; then
                next=${SERVER_ARGS[i + 1]:-}
                parent=${TMPDIR:-/tmp}
                if [ -n "$next" ] && [ "${next#-}" = "$next" ]; then
                    parent=$next
                    i=$((i + 1))
                fi
                WAL_DIR=$(mktemp -d "$parent/bench-wal.XXXXXX") || return 1
                args+=(-b "$WAL_DIR")
            else
                args+=("$a")
            fi
        done
        "$bin" -l 127.0.0.1 -p "$PORT" "${args[@]}" >"$log" 2>&1 &
        SERVER_PID=$!
        for ((i = 0; i < 100; i++)); do
            if ! kill -0 "$SERVER_PID" 2>/dev/null; then
                break
            fi
            if port_open "$PORT"; then
                return 0
            fi
            sleep 0.05
        done
        # died (port taken after all?) or never listened: try another port
        stop_pid "$SERVER_PID"
        SERVER_PID=""
        [ -n "$WAL_DIR" ] && rm -rf "$WAL_DIR"
        WAL_DIR=""
        if grep -qi "address already in use" "$log" 2>/dev/null; then
            continue
        fi
        echo "bench: $bin did not start listening on 127.0.0.1:$PORT; its output:" >&2
        sed 's/^/    /' "$log" | tail -n 20 >&2
        return 1
    done
    echo "bench: no free port found" >&2
    return 1
}

# run_one WHO BINARY WORKLOAD: sets RESULT to the bsbench result line;
# returns non-zero on failure.  Runs in the main shell
# (not in $(...)) so that the traps know every PID it starts.
run_one() {
    local who=$1 bin=$2 w=$3 log=$WORK/server.log out=$WORK/out err=$WORK/err
    local rc
    RESULT=""
    start_server "$bin" "$log" || return 1
    # shellcheck disable=SC2046
    timeout "$RUN_TIMEOUT" "$BS" -q -p "$PORT" -S "$SERVER_PID" -w "$w" $(flags_for "$w" "$MODE") \
        "${CLIENT_ARGS[@]}" \
        >"$out" 2>"$err" &
    CLIENT_PID=$!
    wait "$CLIENT_PID"
    rc=$?
    CLIENT_PID=""
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID"
        echo "bench: $who server ($bin) died during $w (status $?); its output:" >&2
        sed 's/^/    /' "$log" | tail -n 20 >&2
        rc=1
    fi
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    [ -n "$WAL_DIR" ] && rm -rf "$WAL_DIR"
    WAL_DIR=""
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 124 ] && echo "bench: $who: $w run exceeded ${RUN_TIMEOUT}s" >&2
        echo "bench: $who: bsbench -w $w failed (status $rc):" >&2
        sed 's/^/    /' "$err" >&2
        return 1
    fi
    RESULT=$(cat "$out")
    case $RESULT in *ops_per_sec=*) ;; *)
        echo "bench: $who: bsbench -w $w printed no result" >&2
        return 1
        ;;
    esac
}

field() { # field NAME LINE
    local kv
    for kv in $2; do
        case $kv in "$1"=*) echo "${kv#*=}" ;; esac
    done
}

median() { # median NUMBERS...: empty if none
    [ $# -gt 0 ] || return 0
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { # ratio A B
    if [ -z "$1" ] || [ -z "$2" ]; then
        echo "-"
        return
    fi
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

# ---------------------------------------------------------------- main

echo "bench: $(date -u '+%Y-%m-%d %H:%M:%S UTC') mode=$MODE rounds=$ROUNDS" >&2
echo "bench: ours=$OURS stock=$STOCK server args='${BENCH_SERVER_ARGS:-}' client args='${BENCH_CLIENT_ARGS:-}'" >&2

failed=0
declare -A OPS P99 CPU
for w in $WORKLOADS; do
    for who in ours stock; do
        OPS[$who:$w]=""
        P99[$who:$w]=""
        CPU[$who:$w]=""
    done
    echo "bench: $w: bsbench -w $w $(flags_for "$w" "$MODE") ${BENCH_CLIENT_ARGS:-}" >&2
    for ((r = 1; r <= ROUNDS; r++)); do
        for who in ours stock; do
            if [ "$who" = ours ]; then bin=$OURS; else bin=$STOCK; fi
            if run_one "$who" "$bin" "$w"; then
                line=$RESULT
                ops=$(field ops_per_sec "$line")
                p99=$(field p99_us "$line")
                cpu=$(field srv_cpu_us_per_op "$line")
                OPS[$who:$w]+=" $ops"
                P99[$who:$w]+=" $p99"
                CPU[$who:$w]+=" $cpu"
                printf 'bench:   round %d %-5s %8s ops/s  p99 %9s us  server cpu %6s us/op\n' \
                    "$r" "$who" "$ops" "${p99:--}" "$cpu" >&2
                [ -n "${BENCH_RAW:-}" ] && echo "server=$who round=$r $line" >>"$BENCH_RAW"
            else
                failed=1
                OPS[$who:$w]+=" FAIL"
            fi
        done
    done
done

int() { # int VALUE: rounded, or VALUE itself if not a number
    case $1 in
    '' | *[!0-9.]*) echo "$1" ;;
    *) awk -v v="$1" 'BEGIN { printf "%.0f", v }' ;;
    esac
}

fmt() { # fmt VALUES: median, or FAIL if any run failed
    case " $* " in *" FAIL "*)
        echo FAIL
        return
        ;;
    esac
    median "$@"
}

printf '\n%-14s %11s %11s %6s %10s %11s %6s %9s %9s %6s\n' workload "ours ops/s" "stock ops/s" ratio \
    "ours p99us" "stock p99us" ratio "ours cpu" "stock cpu" ratio
for w in $WORKLOADS; do
    # shellcheck disable=SC2086
    o=$(fmt ${OPS[ours:$w]})
    # shellcheck disable=SC2086
    s=$(fmt ${OPS[stock:$w]})
    # shellcheck disable=SC2086
    op=$(median ${P99[ours:$w]})
    # shellcheck disable=SC2086
    sp=$(median ${P99[stock:$w]})
    ro=$(ratio "${o#FAIL}" "${s#FAIL}")
    rp=$(ratio "$op" "$sp")
    # shellcheck disable=SC2086
    oc=$(median ${CPU[ours:$w]})
    # shellcheck disable=SC2086
    sc=$(median ${CPU[stock:$w]})
    rc=$(ratio "$oc" "$sc")
    [ "$o" = FAIL ] && { op=""; oc=""; ro="-"; rp="-"; rc="-"; }
    [ "$s" = FAIL ] && { sp=""; sc=""; ro="-"; rp="-"; rc="-"; }
    printf '%-14s %11s %11s %6s %10s %11s %6s %9s %9s %6s\n' "$w" "$(int "$o")" "$(int "$s")" "$ro" \
        "$(int "${op:--}")" "$(int "${sp:--}")" "$rp" "${oc:--}" "${sc:--}" "$rc"
done
echo "(ratio = ours/stock of the medians of $ROUNDS runs each; ops/s: higher is better;"
echo " p99 = 99th-percentile latency in us, cpu = server CPU us per op: lower is better)"
exit "$failed"
