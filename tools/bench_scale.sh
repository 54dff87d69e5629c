#!/usr/bin/env bash
# Scale benchmark (part of `make bench`): producer/consumer throughput on one
# busy tube, first with one tube and no idle connections, then with TUBES
# tubes (each with a blocked watcher and DELAYED delayed jobs) and IDLE idle
# connections. Runs ours and stock alternately, ROUNDS times each, a fresh
# server per run, and prints the medians and the ratio scaled/plain for
# each server: the cost of many tubes and connections, which should be none.
#
#   tools/bench_scale.sh OURS [STOCK]
#   env: SCALE_TUBES (10000), SCALE_IDLE (10000), SCALE_DELAYED (10),
#        SCALE_SECONDS (4), SCALE_ROUNDS (3), SCALE_PAIRS (2)
set -u
OURS=${1:?usage: bench_scale.sh OURS [STOCK]}
STOCK=${2:-/usr/bin/beanstalkd}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BSBENCH=$HERE/bsbench
TUBES=${SCALE_TUBES:-10000}
IDLE=${SCALE_IDLE:-10000}
DELAYED=${SCALE_DELAYED:-10}
SECS=${SCALE_SECONDS:-4}
ROUNDS=${SCALE_ROUNDS:-3}
PAIRS=${SCALE_PAIRS:-2}

# Both ends need a descriptor per connection: TUBES + IDLE + pairs each.
# Raise the limit as far as allowed; where the hard limit is lower (20000
# on the development VMs, even for root), scale TUBES and IDLE down
# together to fit, and say so.
want=$(( TUBES + IDLE + 4 * PAIRS + 100 ))
ulimit -Hn "$want" 2>/dev/null
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
have=$(ulimit -n)
if [ "$have" != unlimited ] && [ "$have" -lt "$want" ]; then
    fit=$(( (have - 4 * PAIRS - 100) / 2 ))
    echo "scale: open-file limit $have < $want: using $fit tubes and $fit idle connections" >&2
    TUBES=$fit
    IDLE=$fit
fi

servers=("$OURS")
[ -x "$STOCK" ] && servers+=("$STOCK")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run SERVER TUBES IDLE -> prints ops/s
run() {
    local bin=$1 tubes=$2 idle=$3 port pid out
    port=$(free_port)
    "$bin" -l 127.0.0.1 -p "$port" 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do
        (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    out=$("$BSBENCH" -p "$port" -w scale -c "$PAIRS" -T "$tubes" -D "$DELAYED" -I "$idle" \
          -t "$SECS" -S "$pid" -q -W 300 2>/dev/null)
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "$out" | grep -oE 'ops_per_sec=[0-9]+' | cut -d= -f2
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }

declare -A plain scaled
for ((r = 1; r <= ROUNDS; r++)); do
    for s in "${servers[@]}"; do
        p=$(run "$s" 1 0)
        q=$(run "$s" "$TUBES" "$IDLE")
        echo "scale: round $r $s: 1 tube ${p:-0} ops/s, $TUBES tubes + $IDLE idle ${q:-0} ops/s" >&2
        plain[$s]="${plain[$s]:-} ${p:-0}"
        scaled[$s]="${scaled[$s]:-} ${q:-0}"
    done
done
echo "scale: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $PAIRS producer/consumer pairs, $SECS s per run, medians of $ROUNDS"
printf '%-24s %12s %22s %8s\n' server "1 tube" "$TUBES tubes+$IDLE idle" ratio
for s in "${servers[@]}"; do
    a=$(echo "${plain[$s]}" | median)
    b=$(echo "${scaled[$s]}" | median)
    printf '%-24s %12s %22s %8s\n' "$(basename "$s")$([ "$s" = "$OURS" ] && echo ' (ours)')" "$a" "$b" \
        "$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }')"
done
