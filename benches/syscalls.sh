#!/usr/bin/env bash
# Syscalls per ping round trip per idle session (issue 11).
#
#   bash benches/syscalls.sh [N] [RUNS]        (defaults 1000 sessions, 3 runs)
#   PORT=9301 bash benches/syscalls.sh ...     (else a free port is picked)
#   SYSCALL_MODES=burst BROKER_ARGS="--ping-ms 1000" LOADGEN_ARGS="--ping-when-idle" bash benches/syscalls.sh ...
#                                              (optional: modes to run, extra broker and loadgen options)
#
# For each mode, RUNS times: the example broker in its own process, then
#   strace -f -c -o FILE loadgen --connections N --ping-interval 1000 --hold-ms H
# for H = 2000 and H = 12000. Everything before and after the hold (connects,
# upgrades, hellos, exit) is the same in both, so per syscall
#   per round trip = (calls[12 s hold] - calls[2 s hold]) / round trips
# with round trips = N * 10 (the nominal count: one ping a second for 10 s
# more), and also divided by the pongs actually counted (the summed
# `Stats::latency_samples` loadgen logs, 12 s run minus 2 s run).
# Modes: "spread" (--spread-ms 1000: session starts spread evenly over one
# ping interval, so no two pings coincide) and "burst" (as loadgen starts
# them: all at once, so pings fall together and share reactor wake-ups).
#
# The split: per socket are send (sendto), recv (recvfrom; "eagain" counts
# the failing ones) and the socket's own epoll_ctl; shared are the reactor's
# calls. async-io's reactor (polling's epoll backend) does, per wait, exactly
# one epoll_pwait, one timerfd_settime, one read of its eventfd and two
# epoll_ctl (re-arming its oneshot timerfd and eventfd), and a write to the
# eventfd per notification (a timer inserted, a thread to wake). So
#   socket epoll_ctl = epoll_ctl - 2 * epoll_pwait.
# strace slows the process: the counts hold, timings do not.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}; RUNS=${2:-3}
if ! command -v strace >/dev/null; then
  apt-get install -y strace >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y strace >/dev/null; }
fi
cargo build -q --release --example broker --example loadgen
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
dir=$(mktemp -d)
# shellcheck disable=SC2086 # word splitting of the extra options is wanted
./target/release/examples/broker ${BROKER_ARGS:-} 127.0.0.1:"$PORT" 2>"$dir/broker.err" & BROKER=$!
trap 'kill $BROKER 2>/dev/null; wait $BROKER 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
  sleep 0.1
done
echo "# uptime: $(uptime)"
echo "# $N sessions, ping 1000 ms, holds 2000/12000 ms, broker on 127.0.0.1:$PORT, $RUNS runs per mode; broker args: ${BROKER_ARGS:-none}; loadgen args: ${LOADGEN_ARGS:-none}"
for run in $(seq "$RUNS"); do
  for mode in ${SYSCALL_MODES:-spread burst}; do
    spread=(); [ "$mode" = spread ] && spread=(--spread-ms 1000)
    for hold in 2000 12000; do
      base="$dir/$mode.$run.$hold"
      strace -f -c -o "$base.strace" ./target/release/examples/loadgen --connections "$N" \
        --ping-interval 1000 --hold-ms "$hold" "${spread[@]}" ${LOADGEN_ARGS:-} ws://127.0.0.1:"$PORT"/ws \
        >"$base.out" 2>"$base.err"
      grep -q '"event":"summary"' "$base.out" || { echo "loadgen failed:"; cat "$base.out" "$base.err"; exit 1; }
    done
    python3 - "$dir/$mode.$run" "$N" "$mode" "$run" <<'PY'
import re, sys
base, n, mode, run = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def counts(path):
    calls, errors = {}, {}
    for line in open(path):
        f = line.split()
        if len(f) >= 5 and re.fullmatch(r"[\d.]+", f[0]) and f[-1] != "total":
            calls[f[-1]] = int(f[3])
            errors[f[-1]] = int(f[4]) if len(f) == 6 else 0
    return calls, errors
def pongs(path):
    m = re.search(r"ping round trips (\d+)", open(path).read())
    return int(m.group(1)) if m else 0
(c2, e2), (c12, e12) = counts(base + ".2000.strace"), counts(base + ".12000.strace")
d = lambda k: c12.get(k, 0) - c2.get(k, 0)
nominal = n * 10
measured = pongs(base + ".12000.err") - pongs(base + ".2000.err")
pw = d("epoll_pwait") + d("epoll_wait") + d("epoll_pwait2")
row = {
    "send": d("sendto") + d("sendmsg"), "recv": d("recvfrom") + d("recvmsg"),
    "eagain": (e12.get("recvfrom", 0) - e2.get("recvfrom", 0)),
    "epoll_ctl_socket": d("epoll_ctl") - 2 * pw,
    "epoll_pwait": pw, "epoll_ctl_reactor": 2 * pw, "timerfd_settime": d("timerfd_settime"),
    "eventfd_read": d("read"), "eventfd_write": d("write"), "futex": d("futex"),
}
sock = row["send"] + row["recv"] + row["epoll_ctl_socket"]
shared = sum(row[k] for k in ("epoll_pwait", "epoll_ctl_reactor", "timerfd_settime", "eventfd_read", "eventfd_write", "futex"))
others = {k: d(k) for k in set(c12) | set(c2)} 
known = {"sendto","sendmsg","recvfrom","recvmsg","epoll_ctl","epoll_pwait","epoll_wait","epoll_pwait2","timerfd_settime","read","write","futex"}
rest = sum(v for k, v in others.items() if k not in known)
per = lambda v, div: v / div if div else float("nan")
print(f"{mode:6} run {run}: round trips nominal {nominal}, measured (pongs) {measured}")
for div, label in ((nominal, "per nominal round trip"), (measured, "per measured round trip")):
    print(f"  {mode:6} run {run} {label:24}: TOTAL {per(sock + shared + rest, div):5.2f} | per socket {per(sock, div):5.2f} "
          f"(send {per(row['send'], div):.2f}, recv {per(row['recv'], div):.2f} of which eagain {per(row['eagain'], div):.2f}, epoll_ctl {per(row['epoll_ctl_socket'], div):.2f}) "
          f"| shared {per(shared, div):5.2f} (epoll_pwait {per(row['epoll_pwait'], div):.2f}, epoll_ctl {per(row['epoll_ctl_reactor'], div):.2f}, "
          f"timerfd_settime {per(row['timerfd_settime'], div):.2f}, eventfd read {per(row['eventfd_read'], div):.2f}, "
          f"eventfd write {per(row['eventfd_write'], div):.2f}, futex {per(row['futex'], div):.2f}) | other {per(rest, div):.2f}")
PY
  done
done
