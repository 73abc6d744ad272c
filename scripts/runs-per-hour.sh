#!/usr/bin/env bash
# Runs per hour of a `mini` table (simsiam-table1's rows: SimSiam at batch 256, 10 epochs) with
# `ablate run`'s default split (one single-threaded worker per core), for one or more ablate
# binaries measured one after the other in the same session — e.g. a build of an older commit
# against the current one:
#
#   git worktree add /tmp/before <commit> && (cd /tmp/before && swift build -c release --product ablate)
#   scripts/runs-per-hour.sh /tmp/before/.build/release/ablate .build/release/ablate
#
# Each binary trains one epoch of SimSiam `mini` (seed 0) in N single-threaded processes at once
# (N = cores), then runs the final evaluation (kNN and linear probe), as a sweep's workers do; twice,
# in the order 1, 2, …, 2, 1. A
# 10-epoch run then takes 10 × (epoch + monitor) + final evaluation, and N of them run at once.
# Writes results/timing/runs-per-hour.md (or $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 1 ]] || { echo "usage: $0 <ablate binary>..." >&2; exit 2; }
OUT=${OUT:-results/timing/runs-per-hour.md}
N=$(nproc)
PROTOCOL=${PROTOCOL:-mini}   # smoke: a seconds-long check of this script
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
busy=$(awk '{print $1}' /proc/loadavg)

bins=("$@")
for bin in "${bins[@]}"; do
    [[ -x $bin ]] || { echo "error: $bin is not an executable ablate binary" >&2; exit 2; }
done
# Each build twice, in the order 1, 2, …, n, n, …, 2, 1: a host whose speed drifts during the
# measurement then slows every build alike.
order=()
for k in $(seq 1 $#); do order+=("$k"); done
for k in $(seq $# -1 1); do order+=("$k"); done
declare -A round=()
for k in "${order[@]}"; do
    bin=${bins[$((k - 1))]}
    r=$(( ${round[$k]:-0} + 1 )); round[$k]=$r
    echo "[rate] $bin (round $r of 2): $N single-threaded processes, one mini epoch each …"
    pids=()
    for i in $(seq 1 "$N"); do
        ABLATE_THREADS=1 "$bin" train --protocol "$PROTOCOL" --epochs 1 --seed 0 --json "$TMP/b$k-r$r-p$i.json" >"$TMP/b$k-r$r-p$i.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    echo "$bin" >"$TMP/b$k.name"
    (cd "$(dirname "$bin")" && git rev-parse --short=12 HEAD 2>/dev/null || echo "?") >"$TMP/b$k.rev"
done
k=$#

python3 - "$OUT" "$N" "$busy" "$TMP" "$k" "$PROTOCOL" <<'EOF'
import json, sys, re, os, datetime
out, n, busy, tmp, count, protocol = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
rows, rates = [], []
for b in range(1, count + 1):
    name, rev = open(f"{tmp}/b{b}.name").read().strip(), open(f"{tmp}/b{b}.rev").read().strip()
    epoch, monitor, final = [], [], []
    for r in (1, 2):
        for p in range(1, n + 1):
            d = json.load(open(f"{tmp}/b{b}-r{r}-p{p}.json"))
            epoch.append(d["epochs"][0]["seconds"]); monitor.append(d["epochs"][0].get("monitorSeconds", 0))
            log = open(f"{tmp}/b{b}-r{r}-p{p}.log").read()
            final.append(float(re.search(r"final evaluation ([0-9.]+) s", log).group(1)))
    mean = lambda xs: sum(xs) / len(xs)
    run = 10 * (mean(epoch) + mean(monitor)) + mean(final)
    rate = n * 3600 / run
    rates.append(rate)
    rows.append(f"| `{rev}` ({name}) | {mean(epoch):.1f} | {mean(monitor):.1f} | {mean(final):.1f} | {run / 60:.1f} | {rate:.2f} |")
lines = [
    "# Runs per hour of simsiam-table1 on `" + protocol + "`",
    "",
    f"`scripts/runs-per-hour.sh`: each build trains one epoch of SimSiam `{protocol}` (seed 0) in {n} single-threaded processes "
    "at once (`ablate run`'s default split), then runs the final evaluation (kNN and linear probe). A 10-epoch run of "
    f"simsiam-table1 takes 10 × (epoch + monitor) + final evaluation; {n} run at once. Each build ran twice, in the "
    "order 1, 2, 2, 1 (a host whose speed drifts slows both alike); means over both rounds and the processes.",
    "",
    "| build | s / epoch | monitor s / epoch | final evaluation s | one 10-epoch run, min | runs per hour |",
    "|---|---:|---:|---:|---:|---:|",
    *rows,
    "",
]
if len(rates) >= 2:
    lines += [f"The last build finishes {rates[-1] / rates[0]:.2f}× as many runs per hour as the first.", ""]
lines += [f"Machine: {n} cores, load average {busy} before the first build; "
          f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}.", ""]
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
print(f"wrote {out}")
EOF
