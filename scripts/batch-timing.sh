#!/usr/bin/env bash
# Training time per epoch of SimSiam `mini` at several batch sizes (simsiam-table2's rows), all
# with the same binary on the same host in one session — the table's own "s / epoch" column
# compares runs that ran weeks apart on different builds:
#
#   scripts/batch-timing.sh                 # batches 64 256 4096
#   scripts/batch-timing.sh 64 128 256      # any batch sizes
#
# One single-threaded process (a sweep worker's setting) trains one epoch (seed 0, no per-epoch
# monitor) at each batch size, in the order b1, b2, …, bn, bn, …, b1, so that a host whose speed
# drifts slows every batch size alike. Writes results/timing/batch-size.md (or $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/ablate}
OUT=${OUT:-results/timing/batch-size.md}
PROTOCOL=${PROTOCOL:-mini}   # smoke: a seconds-long check of this script
[[ -x $BIN ]] || { echo "error: $BIN is not built; run 'make build' (or set BIN)" >&2; exit 2; }
batches=("${@:-64 256 4096}")
read -r -a batches <<<"${batches[*]}"
for b in "${batches[@]}"; do
    [[ $b =~ ^[1-9][0-9]*$ ]] || { echo "error: batch size '$b' is not a positive integer" >&2; exit 2; }
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
busy=$(awk '{print $1}' /proc/loadavg)
order=("${batches[@]}")
for ((i = ${#batches[@]} - 1; i >= 0; i--)); do order+=("${batches[$i]}"); done
declare -A round=()
for b in "${order[@]}"; do
    r=$(( ${round[$b]:-0} + 1 )); round[$b]=$r
    echo "[batch-timing] batch $b (round $r of 2): one $PROTOCOL epoch, one thread …"
    ABLATE_THREADS=1 "$BIN" train --protocol "$PROTOCOL" --batch "$b" --epochs 1 --seed 0 --no-monitor --no-linear \
        --json "$TMP/b$b-r$r.json" >"$TMP/b$b-r$r.log" 2>&1 \
        || { echo "error: batch $b failed; its log:" >&2; cat "$TMP/b$b-r$r.log" >&2; exit 1; }
done
rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo "?")

python3 - "$OUT" "$busy" "$TMP" "$PROTOCOL" "$rev" "${batches[@]}" <<'EOF'
import json, sys, os, datetime
out, busy, tmp, protocol, rev, batches = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
images = {"mini": 60000}.get(protocol)
seconds = {b: [json.load(open(f"{tmp}/b{b}-r{r}.json"))["epochs"][0]["seconds"] for r in (1, 2)] for b in batches}
mean = {b: sum(s) / 2 for b, s in seconds.items()}
ref = "256" if "256" in batches else batches[0]
rows = []
for b in batches:
    steps = images // int(b) if images else None   # the last partial batch is dropped
    per_step = f"{1000 * mean[b] / steps:.0f}" if steps else "—"
    rows.append(f"| {b} | {steps or '—'} | {per_step} | {seconds[b][0]:.1f}, {seconds[b][1]:.1f} | {mean[b]:.1f} | {mean[b] / mean[ref]:.2f} |")
lines = [
    f"# Time per epoch against batch size (`{protocol}`)",
    "",
    f"`scripts/batch-timing.sh`, build `{rev}`: one single-threaded process trains one epoch of SimSiam `{protocol}` "
    "(seed 0, no per-epoch monitor) at each batch size, in the order "
    + ", ".join(batches + batches[::-1]) + " (a host whose speed drifts slows every size alike).",
    "",
    f"| batch | steps / epoch | ms / step | s / epoch (both rounds) | s / epoch | ÷ batch {ref} |",
    "|---:|---:|---:|---:|---:|---:|",
    *rows,
    "",
    f"Machine: {os.cpu_count()} cores, load average {busy} before the first epoch "
    "(other processes, e.g. a sweep's workers, share the cores); "
    f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}.",
    "",
]
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
print(f"wrote {out}")
EOF
