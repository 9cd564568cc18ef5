#!/usr/bin/env bash
# What an idle store costs the apiserver's background work (the garbage collector): starts
# `cellfed apiserver` on SQLite, creates N ConfigMaps of 20 KB, then makes one small write a
# second for SECONDS and prints the server's CPU (user+system, as a share of one core) and RSS.
# Usage: bench/gc_cost.sh [BIN=target/debug/cellfed] [N=4000] [SECONDS=30]
set -euo pipefail
BIN=${1:-target/debug/cellfed}
N=${2:-4000}
SECS=${3:-30}
DIR=$(mktemp -d)
"$BIN" apiserver --listen 127.0.0.1:0 --data-dir "$DIR" --storage "sqlite://$DIR/store.db" 2>"$DIR/log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
export KUBECONFIG=$DIR/kubeconfig
for _ in $(seq 1 200); do
  [ -f "$KUBECONFIG" ] && kubectl get --raw /readyz >/dev/null 2>&1 && break
  sleep 0.3
done
python3 - "$N" >"$DIR/list.json" <<'PY'
import json, sys
n, v = int(sys.argv[1]), "x" * 20000
items = [{"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": f"c{i}", "namespace": "default"}, "data": {"v": v}} for i in range(n)]
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
PY
kubectl create --validate=false -f "$DIR/list.json" >/dev/null
kubectl create configmap ticker >/dev/null
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
t0=$(ticks); w0=$(date +%s.%N)
for i in $(seq 1 "$SECS"); do
  kubectl label configmap ticker "n=$i" --overwrite >/dev/null
  sleep 1
done
t1=$(ticks); w1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
python3 -c "print('$N x 20 KB, one write/s: CPU %.1f%% of a core over %.0f s; RSS %d MB (peak %d MB)' % (($t1 - $t0) / $hz / ($w1 - $w0) * 100, $w1 - $w0, $rss / 1024, $hwm / 1024))"
