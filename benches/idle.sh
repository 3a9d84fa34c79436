#!/usr/bin/env bash
# Idle memory and keepalive CPU per session, ws-lifecycle vs raw
# async-tungstenite (same WebSocketConfig), broker in another process,
# alternating fresh processes. Prints every round, then the medians.
#   bash benches/idle.sh [N] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}; ROUNDS=${2:-5}; PORT=9199
cargo build -q --release --example broker --example idle_memory
./target/release/examples/broker 127.0.0.1:$PORT 2>/dev/null & BROKER=$!
trap 'kill $BROKER 2>/dev/null' EXIT
sleep 0.5
out=$(mktemp)
for _ in $(seq "$ROUNDS"); do
  for mode in lifecycle raw; do
    ./target/release/examples/idle_memory --mode $mode --n "$N" --ping-ms 1000 --hold-ms 5000 \
      ws://127.0.0.1:$PORT/ws 2>&1 | grep '^{' | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for mode in ("lifecycle", "raw"):
    mem = [r for r in rows if r["mode"] == mode and "rss_per_session_kib" in r]
    cpu = [r for r in rows if r["mode"] == mode and "cpu_us_per_round_trip" in r]
    med = lambda k, rs: statistics.median(r[k] for r in rs)
    print(f"{mode:9}: rss {med('rss_per_session_kib', mem):.2f} KiB/session, heap {med('heap_per_session_kib', mem):.2f} KiB/session, "
          f"peak heap {med('peak_heap_per_session_kib', mem):.2f} KiB/session, cpu {med('cpu_us_per_round_trip', cpu):.2f} us/ping round trip")
PY
