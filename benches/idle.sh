#!/usr/bin/env bash
# Idle memory and keepalive CPU per session, ws-lifecycle vs raw
# async-tungstenite (same WebSocketConfig; one re-armed timer per client,
# see examples/idle_memory.rs), broker in another process, alternating
# fresh processes. Prints every round, then per mode the median and range,
# and the lifecycle/raw CPU ratio of each round (same run, adjacent
# processes). CPU is the client process's only (the broker is not counted).
#   bash benches/idle.sh [N] [ROUNDS]
#   PORT=9301 MODES="lifecycle raw raw-naive" READ_BUFFER=1024 bash benches/idle.sh ...
# (a free port is picked unless PORT is set; MODES defaults to "lifecycle raw";
# READ_BUFFER sets both clients' read buffer, default the transport's)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}; ROUNDS=${2:-5}; MODES=${MODES:-lifecycle raw}
RB=(); [ -n "${READ_BUFFER:-}" ] && RB=(--read-buffer "$READ_BUFFER")
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
cargo build -q --release --example broker --example idle_memory
./target/release/examples/broker 127.0.0.1:"$PORT" 2>/dev/null & BROKER=$!
out=$(mktemp)
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 0.1
done
echo "# uptime: $(uptime)"
echo "# $N sessions, read buffer ${READ_BUFFER:-default}, ping 1000 ms, hold 5000 ms, broker on 127.0.0.1:$PORT, $ROUNDS rounds of: $MODES"
for round in $(seq "$ROUNDS"); do
  for mode in $MODES; do
    ./target/release/examples/idle_memory --mode "$mode" --n "$N" --ping-ms 1000 --hold-ms 5000 "${RB[@]}" \
      ws://127.0.0.1:"$PORT"/ws 2>&1 | grep '^{' | sed "s/^{/{\"round\":$round,/" | tee -a "$out"
  done
done
python3 - "$out" "$N" $MODES <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
n, modes = sys.argv[2], sys.argv[3:]
def fig(values, unit):
    return f"median {statistics.median(values):.2f} {unit} (range {min(values):.2f}-{max(values):.2f}, {len(values)} runs)"
cpu = {}
for mode in modes:
    mem = [r for r in rows if r["mode"] == mode and "rss_per_session_kib" in r]
    cpu[mode] = {r["round"]: r["cpu_us_per_round_trip"] for r in rows if r["mode"] == mode and "cpu_us_per_round_trip" in r}
    print(f"N={n} {mode:9} rss per session: {fig([r['rss_per_session_kib'] for r in mem], 'KiB')}")
    print(f"N={n} {mode:9} anonymous rss per session: {fig([r['anon_rss_per_session_kib'] for r in mem], 'KiB')}")
    print(f"N={n} {mode:9} heap per session: {fig([r['heap_per_session_kib'] for r in mem], 'KiB')}; "
          f"peak heap {fig([r['peak_heap_per_session_kib'] for r in mem], 'KiB')}")
    print(f"N={n} {mode:9} cpu per ping round trip: {fig(list(cpu[mode].values()), 'us')}")
for mode in modes:
    if mode == "lifecycle" or "lifecycle" not in cpu:
        continue
    ratios = [cpu["lifecycle"][k] / cpu[mode][k] for k in cpu["lifecycle"] if k in cpu[mode] and cpu[mode][k] > 0]
    if ratios:
        print(f"N={n} cpu ratio lifecycle/{mode} per round: {fig(ratios, 'x')}")
PY
