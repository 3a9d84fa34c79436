#!/usr/bin/env bash
# Every figure of docs/PERFORMANCE.md's summary, in one go, on a quiet
# machine (nothing else compiling): each benchmark three times, the raw
# async-tungstenite figure in the same run. Output: one log per figure in
# $OUT (default target/perf-<date>), plus everything on stdout.
#   bash benches/all.sh            # about 20 minutes on 2 cores
#   SCALE_RUNS=3 bash benches/all.sh   # each scale size three times (+10 minutes)
#   SCALE=0 bash benches/all.sh    # without the 60 s holds at 1,000-19,000 sessions
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/perf-$(date -u +%Y%m%dT%H%M)}
mkdir -p "$OUT"
echo "# $(date -u) $(uptime)" | tee "$OUT/uptime.txt"
cargo build -q --release --examples
cargo bench -q --no-run 2>/dev/null
run() { local name=$1; shift; echo "=== $name: $*" | tee -a "$OUT/$name.log"; "$@" 2>&1 | tee -a "$OUT/$name.log"; }
for i in 1 2 3; do run echo cargo bench -q --bench echo; done
for i in 1 2 3; do run inbound cargo bench -q --bench inbound; done
for i in 1 2 3; do run step cargo bench -q --bench step; done
run idle-1000 bash benches/idle.sh 1000 3
run idle-5000 bash benches/idle.sh 5000 3
READ_BUFFER=1024 run idle-1000-rb1024 bash benches/idle.sh 1000 3
READ_BUFFER=1024 run idle-5000-rb1024 bash benches/idle.sh 5000 3
run idle-19000 bash benches/idle.sh 19000 1
run syscalls bash benches/syscalls.sh 1000 3
run syscalls-vs-raw bash benches/syscalls_vs_raw.sh
if [ "${SCALE:-1}" != 0 ]; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  ./target/release/examples/broker 127.0.0.1:"$PORT" 2>/dev/null & BROKER=$!
  trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null || true' EXIT
  sleep 0.5
  for _ in $(seq "${SCALE_RUNS:-1}"); do for n in 1000 5000 10000 19000; do
    run "scale-$n" ./target/release/examples/loadgen --connections "$n" --ping-interval 30000 \
      --hold-ms 60000 ws://127.0.0.1:"$PORT"/ws
  done; done
fi
echo "# logs in $OUT"
