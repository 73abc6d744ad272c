#!/usr/bin/env bash
# Which split of the cores trains `mini` runs sooner, on the real training loop (augmentation on
# its background queue, the per-step diagnostics, the per-epoch monitor), not on `ablate bench`'s
# bare step: one epoch of SimSiam `mini`, seed 0, as
#   1 process × N threads (lanes on: each view on a thread of its own), then
#   N processes × 1 thread at once (what `ablate run` starts by default),
# on a machine with nothing else running. Writes results/timing/split.md (or $1).
#
#   scripts/split-timing.sh                  # N = the number of cores
#   EPOCHS=2 scripts/split-timing.sh /tmp/split.md
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/timing/split.md}
EPOCHS=${EPOCHS:-1}
PROTOCOL=${PROTOCOL:-mini}   # smoke: a seconds-long check of this script
N=$(nproc)
BIN=.build/release/ablate
[[ -x $BIN ]] || make build >/dev/null
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
busy=$(awk '{print $1}' /proc/loadavg)

train() {  # $1 threads, $2 json
    ABLATE_THREADS=$1 "$BIN" train --protocol "$PROTOCOL" --epochs "$EPOCHS" --seed 0 --no-linear --json "$2" >"$2.log" 2>&1
}

echo "[split] 1 process × $N threads …"
t0=$(date +%s.%N)
train "$N" "$TMP/shared.json"
t1=$(date +%s.%N)
echo "[split] $N processes × 1 thread at once …"
pids=()
for i in $(seq 1 "$N"); do train 1 "$TMP/single$i.json" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
t2=$(date +%s.%N)

python3 - "$OUT" "$N" "$EPOCHS" "$busy" "$t0" "$t1" "$t2" "$TMP" "$PROTOCOL" <<'EOF'
import json, sys, glob, os, datetime, re
out, n, epochs, busy, t0, t1, t2, tmp, protocol = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], *map(float, sys.argv[5:8]), sys.argv[8], sys.argv[9]
def load(p):
    d = json.load(open(p))
    train = sum(e["seconds"] for e in d["epochs"])
    monitor = sum(e.get("monitorSeconds", 0) for e in d["epochs"])
    return d, train, monitor
# images per run: steps × batch, from the first line of the log ("… 10 epochs × 234 steps, batch 256 …")
steps, batch = map(int, re.search(r"× (\d+) steps, batch (\d+)", open(f"{tmp}/shared.json.log").read()).groups())
images = steps * batch * epochs
shared, st, sm = load(f"{tmp}/shared.json")
singles = [load(p) for p in sorted(glob.glob(f"{tmp}/single*.json"))]
rate_shared = images / (st + sm)
rate_single = sum(images / (t + m) for _, t, m in singles)
lines = [
    "# Splitting the cores: the real training loop" + ("" if protocol == "mini" else f" (protocol {protocol})"),
    "",
    f"`scripts/split-timing.sh`: {epochs} epoch(s) of SimSiam `{protocol}` (seed 0, batch {batch}, augmentation, per-step diagnostics, "
    "per-epoch monitor; the final evaluation is not counted), as one process with every core and as one single-threaded "
    "process per core at once. `ablate bench` times only the bare step (random views, no augmentation, no monitor); "
    "this is what a sweep's workers do.",
    "",
    "| split | training s / epoch | monitor s / epoch | wall s (whole command) | images / s, all processes |",
    "|---|---:|---:|---:|---:|",
    f"| 1 process × {n} threads (lanes) | {st / epochs:.1f} | {sm / epochs:.1f} | {t1 - t0:.0f} | {rate_shared:.0f} |",
    f"| {n} processes × 1 thread | " + ", ".join(f"{t / epochs:.1f}" for _, t, _ in singles) + " | "
    + ", ".join(f"{m / epochs:.1f}" for _, _, m in singles) + f" | {t2 - t1:.0f} | {rate_single:.0f} |",
    "",
    f"Runs finish {rate_single / rate_shared:.2f}× sooner with one process per core"
    + (" (`ablate run`'s default)." if rate_single >= rate_shared else "; here `--workers 1` would be faster."),
    "",
    f"Machine: {n} cores, load average {busy} before the run; {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}.",
    "",
]
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
print(f"wrote {out}")
EOF
