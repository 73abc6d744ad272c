#!/usr/bin/env bash
# Which split of the cores trains `mini` runs sooner, on the real training loop (augmentation on
# its background queue, the per-step diagnostics, the per-epoch monitor), not on `ablate bench`'s
# bare step: one epoch of SimSiam `mini`, seed 0, as
#   1 process × N threads (lanes on: each view on a thread of its own) and
#   N processes × 1 thread at once (what `ablate run` starts by default), twice, alternated,
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
shared() {  # $1 round
    echo "[split] 1 process × $N threads (round $1 of 2) …"
    train "$N" "$TMP/shared-r$1.json"
}
singles() {  # $1 round
    echo "[split] $N processes × 1 thread at once (round $1 of 2) …"
    local pids=() i p
    for i in $(seq 1 "$N"); do train 1 "$TMP/single-r$1-p$i.json" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p"; done
}
# 1 × N, N × 1, N × 1, 1 × N: a host whose speed drifts during the measurement slows both alike.
shared 1; singles 1; singles 2; shared 2

python3 - "$OUT" "$N" "$EPOCHS" "$busy" "$TMP" "$PROTOCOL" <<'EOF'
import json, sys, glob, os, datetime, re
out, n, epochs, busy, tmp, protocol = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
def load(p):
    d = json.load(open(p))
    return sum(e["seconds"] for e in d["epochs"]), sum(e.get("monitorSeconds", 0) for e in d["epochs"])
# images per run: steps × batch, from the first line of the log ("… 10 epochs × 234 steps, batch 256 …")
steps, batch = map(int, re.search(r"× (\d+) steps, batch (\d+)", open(f"{tmp}/shared-r1.json.log").read()).groups())
images = steps * batch * epochs
shared = [load(f"{tmp}/shared-r{r}.json") for r in (1, 2)]
singles = [[load(p) for p in sorted(glob.glob(f"{tmp}/single-r{r}-p*.json"))] for r in (1, 2)]
rate = lambda runs: sum(images / (t + m) for t, m in runs)     # images/s of processes running at once
shared_rates = [rate([s]) for s in shared]
single_rates = [rate(r) for r in singles]
mean = lambda xs: sum(xs) / len(xs)
fmt = lambda xs, d=1: ", ".join(f"{x:.{d}f}" for x in xs)
lines = [
    "# Splitting the cores: the real training loop" + ("" if protocol == "mini" else f" (protocol {protocol})"),
    "",
    f"`scripts/split-timing.sh`: {epochs} epoch(s) of SimSiam `{protocol}` (seed 0, batch {batch}, augmentation, per-step "
    "diagnostics, per-epoch monitor; the final evaluation is not counted), as one process with every core and as one "
    "single-threaded process per core at once, in the order 1 × N, N × 1, N × 1, 1 × N (a host whose speed drifts "
    "slows both alike). Values per round; images/s of all processes together.",
    "",
    "| split | training s / epoch | monitor s / epoch | images / s, all processes | mean images / s |",
    "|---|---:|---:|---:|---:|",
    f"| 1 process × {n} threads (lanes) | {fmt([t / epochs for t, _ in shared])} | {fmt([m / epochs for _, m in shared])} | "
    f"{fmt(shared_rates, 0)} | {mean(shared_rates):.0f} |",
    f"| {n} processes × 1 thread | {fmt([t / epochs for r in singles for t, _ in r])} | {fmt([m / epochs for r in singles for _, m in r])} | "
    f"{fmt(single_rates, 0)} | {mean(single_rates):.0f} |",
    "",
    f"Runs finish {mean(single_rates) / mean(shared_rates):.2f}× sooner with one process per core"
    + (" (`ablate run`'s default)." if mean(single_rates) >= mean(shared_rates) else "; here `--workers 1` would be faster."),
    "",
    f"Machine: {n} cores, load average {busy} before the run; {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}.",
    "",
]
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
print(f"wrote {out}")
EOF
