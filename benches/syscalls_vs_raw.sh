#!/usr/bin/env bash
# Syscalls per ping round trip per idle session, ws-lifecycle against raw
# async-tungstenite (examples/idle_memory: the same WebSocketConfig, one
# re-armed timer per raw client), 1000 sessions started at once, 1 s pings:
# per syscall (calls[12 s hold] - calls[2 s hold]) / 10,000, two runs each.
# benches/syscalls.sh splits ours into per-socket and shared calls.
#   bash benches/syscalls_vs_raw.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v strace >/dev/null; then
  apt-get install -y strace >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y strace >/dev/null; }
fi
cargo build -q --release --example broker --example idle_memory
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
./target/release/examples/broker 127.0.0.1:"$PORT" 2>/dev/null & B=$!
d=$(mktemp -d)
trap 'kill $B 2>/dev/null; wait $B 2>/dev/null || true; rm -rf "$d"' EXIT
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 0.1
done
for run in 1 2; do for mode in lifecycle raw; do for h in 2000 12000; do
  strace -f -c -o "$d"/$mode-$h-$run ./target/release/examples/idle_memory --mode $mode --n 1000 --ping-ms 1000 --hold-ms $h ws://127.0.0.1:$PORT/ws >"$d/$mode-$h-$run.out" 2>&1 \
    || { echo "idle_memory --mode $mode --hold-ms $h failed:"; cat "$d/$mode-$h-$run.out"; exit 1; }
done
python3 - "$d/$mode-2000-$run" "$d/$mode-12000-$run" $mode $run <<'PY'
import sys,re
def calls(p):
    c={}
    for l in open(p):
        f=l.split()
        if len(f)>=5 and f[0][0].isdigit() and f[-1] not in ('total',):
            name=f[-1]; n=int(f[3]); c[name]=n
    return c
a,b=calls(sys.argv[1]),calls(sys.argv[2])
d={k:(b.get(k,0)-a.get(k,0))/10000 for k in set(a)|set(b)}
tot=sum(d.values())
top=sorted(d.items(),key=lambda x:-x[1])[:8]
print(f"{sys.argv[3]:9} run {sys.argv[4]}: TOTAL {tot:.2f} | "+", ".join(f"{k} {v:.2f}" for k,v in top))
PY
done; done
