#!/usr/bin/env python3
"""Parity of `ablate train --protocol mini` with the independent PyTorch implementation
(reference/simsiam_mini.py): same protocol, variants × seeds, then a markdown report.

Each run writes its JSON to <out-dir>/<impl>-<variant>-seed<k>.json (impl: ablate | pytorch);
a run whose JSON already exists is SKIPPED, so the sweep can be resumed across sessions.
Runs execute one at a time (each uses both cores). A run's JSON is written by the
implementation itself to a temporary name and moved into place only when the process exits
successfully; parity.py adds a sidecar <name>.meta.json with the command, the wall time it
measured and the load average before the run. The logs go to <out-dir>/logs/.

The report (default results/parity.md for the default out-dir, else <out-dir>/parity.md):
per variant, mean ± std over seeds of the final kNN top-1, z_std·√d, m_o, m_r for both
implementations, their difference and pass/fail against the acceptance bounds (|Δ mean| ≤ 1.5
kNN points; ≤ 0.05 for z_std·√d, m_o, m_r), per-epoch curves (means over seeds), wall times,
and the verdicts (as computed by each implementation from its final metrics; parity.py
re-derives them from the metrics and flags any disagreement). Missing runs are marked.

Usage:
  python3 reference/parity.py                       # 3 variants × seeds 0,1,2 × 10 epochs
  python3 reference/parity.py --report-only         # report from whatever runs exist
  python3 reference/parity.py --epochs 1 --seeds 0 --variants baseline --out-dir /tmp/p
"""
import argparse
import datetime
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

from verdict import verdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(ROOT, "results", "parity")
DEFAULT_REPORT = os.path.join(ROOT, "results", "parity.md")
DEFAULT_BIN = os.path.join(ROOT, ".build-parity", "release", "ablate")

VARIANTS = {"baseline": [], "no-stop-grad": ["--no-stop-grad"], "no-predictor": ["--no-predictor"]}
IMPLS = ["ablate", "pytorch"]
IMPL_TITLE = {"ablate": "ablate", "pytorch": "PyTorch"}
# (key in final metrics, label, acceptance bound on |mean_ablate − mean_pytorch|)
BOUNDS = [("knn", "kNN top-1 %", 1.5), ("zStd", "z_std·√d", 0.05), ("mO", "m_o", 0.05), ("mR", "m_r", 0.05)]


def run_name(impl, variant, seed):
    return f"{impl}-{variant}-seed{seed}"


def command(impl, variant, seed, epochs, json_path, ablate_bin, threads):
    flags = VARIANTS[variant]
    if impl == "ablate":
        return [ablate_bin, "train", "--protocol", "mini", "--epochs", str(epochs), "--seed", str(seed),
                *flags, "--json", json_path]
    return [sys.executable, os.path.join(HERE, "simsiam_mini.py"), "--epochs", str(epochs), "--seed", str(seed),
            *flags, "--threads", str(threads), "--json", json_path]


def to_float(v):
    if v is None:
        return None
    if isinstance(v, str):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}.get(v.lower(), math.nan)
    return float(v)


def show_path(path):
    rel = os.path.relpath(path, ROOT)
    return path if rel.startswith("..") else rel


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run_all(args):
    os.makedirs(os.path.join(args.out_dir, "logs"), exist_ok=True)
    plan = [(impl, variant, seed) for seed in args.seeds for variant in args.variants for impl in IMPLS]
    todo = [p for p in plan if not os.path.exists(os.path.join(args.out_dir, run_name(*p) + ".json"))]
    print(f"parity: {len(plan)} runs planned, {len(plan) - len(todo)} already done, {len(todo)} to run "
          f"(epochs {args.epochs}, out {args.out_dir})", flush=True)
    if any(impl == "ablate" for impl, _, _ in todo) and not os.access(args.ablate_bin, os.X_OK):
        sys.exit(f"ablate binary not found at {args.ablate_bin}; build it with "
                 f"`swift build -c release --scratch-path .build-parity` or pass --ablate-bin")
    failures = 0
    for i, (impl, variant, seed) in enumerate(todo, 1):
        name = run_name(impl, variant, seed)
        final_path = os.path.join(args.out_dir, name + ".json")
        tmp_path = final_path + ".partial"
        log_path = os.path.join(args.out_dir, "logs", name + ".log")
        cmd = command(impl, variant, seed, args.epochs, tmp_path, args.ablate_bin, args.threads)
        load = os.getloadavg()[0]
        print(f"[{i}/{len(todo)}] {name}: {' '.join(shlex.quote(c) for c in cmd)}", flush=True)
        t0 = time.time()
        with open(log_path, "w") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT).returncode
        wall = time.time() - t0
        if rc != 0 or load_json(tmp_path) is None:
            failures += 1
            print(f"    FAILED (exit {rc}, {wall:.0f} s); see {log_path}", flush=True)
            continue
        os.replace(tmp_path, final_path)
        meta = {"command": cmd, "wallSeconds": wall, "loadavg1Before": load,
                "finishedAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "host": platform.node(), "cpus": os.cpu_count()}
        with open(os.path.join(args.out_dir, name + ".meta.json"), "w") as f:
            json.dump(meta, f, indent=2)
        fin = load_json(final_path)["final"]
        print(f"    done in {wall:.0f} s: kNN {to_float(fin['knn']):.2f}, z_std·√d {to_float(fin['test']['zStd']):.3f}, "
              f"m_o {to_float(fin['test']['mO']):.3f}, m_r {to_float(fin['test']['mR']):.3f}, {fin['verdict']}", flush=True)
    return failures


# ----------------------------------------------------------------------------- report

def mean_std(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None, 0
    m = sum(xs) / len(xs)
    s = statistics.stdev(xs) if len(xs) >= 2 else None
    return m, s, len(xs)


def fmt_ms(xs, digits):
    m, s, n = mean_std(xs)
    if n == 0:
        return "—"
    if not math.isfinite(m):
        return f"{m} (n={n})"
    return f"{m:.{digits}f} ± {s:.{digits}f}" if s is not None else f"{m:.{digits}f} (n=1)"


def collect(args):
    """runs[(impl, variant, seed)] = dict(json=..., meta=...) or None when missing/mismatched."""
    runs, problems = {}, []
    for variant in args.variants:
        for seed in args.seeds:
            for impl in IMPLS:
                name = run_name(impl, variant, seed)
                data = load_json(os.path.join(args.out_dir, name + ".json"))
                if data is None:
                    runs[(impl, variant, seed)] = None
                    continue
                epochs = data.get("config", {}).get("epochs")
                if epochs != args.epochs:
                    problems.append(f"`{name}.json` has {epochs} epochs, not {args.epochs}: left out")
                    runs[(impl, variant, seed)] = None
                    continue
                meta = load_json(os.path.join(args.out_dir, name + ".meta.json")) or {}
                runs[(impl, variant, seed)] = {"json": data, "meta": meta}
    return runs, problems


def final_value(run, key):
    fin = run["json"]["final"]
    return to_float(fin["knn"] if key == "knn" else fin["linear"] if key == "linear" else fin["test"][key])


def write_report(args):
    runs, problems = collect(args)
    L = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    have = sum(r is not None for r in runs.values())
    L += ["# Parity: ablate vs an independent PyTorch implementation of `mini`", "",
          f"Protocol `mini` (PROTOCOLS.md), {args.epochs} epochs, seeds {', '.join(map(str, args.seeds))}, "
          f"variants {', '.join(args.variants)}. ablate: `ablate train --protocol mini`; PyTorch: "
          f"`reference/simsiam_mini.py` (written from the protocol text, torch CPU, {args.threads} threads). "
          f"Runs one at a time on this machine; JSON per run in `{show_path(args.out_dir)}/`. "
          f"Generated by `reference/parity.py` on {now}; {have} of {len(runs)} runs present.", "",
          "Acceptance: per variant, |mean(ablate) − mean(PyTorch)| over seeds ≤ 1.5 points of final kNN top-1 "
          "and ≤ 0.05 for each of z_std·√d, m_o, m_r (all on the test set, see PROTOCOLS.md). "
          "Δ = ablate − PyTorch. ± is the sample std over seeds.", ""]
    missing = [run_name(*k) for k, r in runs.items() if r is None]
    if missing:
        L += [f"**Missing runs ({len(missing)}):** " + ", ".join(f"`{m}`" for m in missing) + ". "
              "Rows computed from fewer seeds say so (n=…); a variant with a missing side is `incomplete`.", ""]
    for p in problems:
        L += [f"- note: {p}"]
    if problems:
        L += [""]

    # ---- summary
    overall = []
    L += ["## Final metrics", ""]
    for variant in args.variants:
        L += [f"### {variant}", "",
              "| metric | ablate | PyTorch | Δ mean | bound | result |", "|---|---:|---:|---:|---:|---|"]
        for key, label, bound in BOUNDS:
            vals = {impl: [final_value(runs[(impl, variant, s)], key) for s in args.seeds if runs[(impl, variant, s)]]
                    for impl in IMPLS}
            digits = 2 if key == "knn" else 3
            ma, _, na = mean_std(vals["ablate"])
            mp, _, npt = mean_std(vals["pytorch"])
            if na == 0 or npt == 0:
                diff, result = "—", "incomplete"
            else:
                d = ma - mp
                diff = f"{d:+.{digits}f}"
                ok = math.isfinite(d) and abs(d) <= bound
                result = ("pass" if ok else "**FAIL**") + ("" if na == npt == len(args.seeds) else f" (partial: {na}/{npt} seeds)")
            overall.append((variant, label, result))
            L += [f"| {label} | {fmt_ms(vals['ablate'], digits)} | {fmt_ms(vals['pytorch'], digits)} | {diff} | "
                  f"{bound} | {result} |"]
        for key, label, digits in [("linear", "linear probe top-1 %", 2), ("covOffdiag", "cov_offdiag", 5)]:
            vals = {impl: [final_value(runs[(impl, variant, s)], key) for s in args.seeds if runs[(impl, variant, s)]]
                    for impl in IMPLS}
            ma, _, na = mean_std(vals["ablate"])
            mp, _, npt = mean_std(vals["pytorch"])
            diff = f"{ma - mp:+.{digits}f}" if na and npt and ma is not None and mp is not None else "—"
            L += [f"| {label} | {fmt_ms(vals['ablate'], digits)} | {fmt_ms(vals['pytorch'], digits)} | {diff} | "
                  f"— | (no bound) |"]
        L += [""]
        # verdicts
        L += ["Verdicts per seed (as written by each implementation; ✓ = parity.py re-derives the same from the "
              "final metrics):", "", "| seed | ablate | PyTorch |", "|---|---|---|"]
        for s in args.seeds:
            cells = []
            for impl in IMPLS:
                r = runs[(impl, variant, s)]
                if r is None:
                    cells.append("missing")
                    continue
                fin = r["json"]["final"]
                recomputed = verdict(r["json"].get("status") == "diverged", to_float(fin["test"]["zStd"]),
                                        to_float(fin["test"]["mO"]), to_float(fin["test"]["mR"]))
                mark = "✓" if recomputed == fin["verdict"] else f"✗ (metrics say {recomputed})"
                cells.append(f"{fin['verdict']} {mark}")
            L += [f"| {s} | {cells[0]} | {cells[1]} |"]
        L += [""]

    L += ["## Acceptance summary", "", "| variant | metric | result |", "|---|---|---|"]
    L += [f"| {v} | {m} | {r} |" for v, m, r in overall]
    fails = [o for o in overall if "FAIL" in o[2]]
    incomplete = [o for o in overall if o[2] == "incomplete" or "partial" in o[2]]
    L += ["", f"**{'FAIL' if fails else 'pass' if not incomplete else 'incomplete'}**: "
          f"{len(overall) - len(fails) - len(incomplete)} pass, {len(fails)} fail, {len(incomplete)} incomplete/partial "
          f"of {len(overall)} checks.", ""]

    # ---- curves
    L += ["## Per-epoch curves (mean over the seeds present)", "",
          "Test-set diagnostics of the projector output z in eval mode (z_std·√d, m_o, m_r), z_std·√d of the last "
          "training batch's z1 in train mode (train z), kNN top-1 on the fixed subset (10k train memory, first 2k "
          "test queries), mean training loss. a = ablate, p = PyTorch.", ""]
    cols = [("test", "mO", "m_o", 3), ("test", "mR", "m_r", 3), ("test", "zStd", "z_std·√d", 3),
            (None, "trainZStd", "train z", 3), (None, "knnSubset", "kNN sub", 2), (None, "meanLoss", "loss", 4)]
    for variant in args.variants:
        L += [f"### {variant}", ""]
        header = "| epoch | " + " | ".join(f"{lab} a | {lab} p" for _, _, lab, _ in cols) + " |"
        L += [header, "|---:|" + "---:|" * (2 * len(cols))]
        for e in range(1, args.epochs + 1):
            row = [str(e)]
            for grp, key, _, digits in cols:
                for impl in IMPLS:
                    xs = []
                    for s in args.seeds:
                        r = runs[(impl, variant, s)]
                        if r is None:
                            continue
                        rec = next((x for x in r["json"].get("epochs", []) if x.get("epoch") == e), None)
                        if rec is None:
                            continue
                        v = rec.get(grp, {}).get(key) if grp else rec.get(key)
                        if v is not None:
                            xs.append(to_float(v))
                    m, _, n = mean_std(xs)
                    row.append("—" if n == 0 else f"{m:.{digits}f}")
            L += ["| " + " | ".join(row) + " |"]
        L += [""]

    # ---- wall time
    L += ["## Wall time per run", "",
          "wall = the process's wall time measured by parity.py (data loading, training, per-epoch monitor, final "
          "kNN + linear probe); train = the run's own `seconds` (training + per-epoch monitor). The machine is "
          "shared, so the 1-min load average before each run is given.", "",
          "| run | wall s | train s | load before |", "|---|---:|---:|---:|"]
    for variant in args.variants:
        for s in args.seeds:
            for impl in IMPLS:
                r = runs[(impl, variant, s)]
                name = run_name(impl, variant, s)
                if r is None:
                    L += [f"| {name} | missing | | |"]
                    continue
                wall = r["meta"].get("wallSeconds")
                load = r["meta"].get("loadavg1Before")
                L += [f"| {name} | {wall:.0f} | {to_float(r['json'].get('seconds')):.0f} | "
                      f"{'' if load is None else f'{load:.2f}'} |" if wall is not None else
                      f"| {name} | (no meta) | {to_float(r['json'].get('seconds')):.0f} | |"]
    L += ["", "## Notes", "",
          "- Verdicts are computed, not typed: each implementation derives its verdict from its own end-of-training "
          "metrics (diverged if NaN/Inf, collapsed if z_std·√d < 0.1, partial-collapse if m_o > m_r, else trained), "
          "and parity.py re-derives it from the JSON metrics (✓ above). Nothing in this report is written by hand.",
          "- The two implementations share the protocol, not random streams: initialisation, data order and "
          "augmentation draws differ, so per-seed numbers are not comparable one to one; only the means over "
          "seeds are compared.",
          "- PyTorch's linear probe keeps the last partial batch (DataLoader default); ablate's drops it. The probe "
          "is not part of the acceptance bounds.", ""]
    os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
    with open(args.report, "w") as f:
        f.write("\n".join(L))
    print(f"wrote {args.report} ({have}/{len(runs)} runs)")
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {', '.join(VARIANTS)}")
    ap.add_argument("--ablate-bin", default=DEFAULT_BIN)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the PyTorch runs")
    ap.add_argument("--out-dir", default=DEFAULT_OUT, help="where the run JSONs go (default results/parity)")
    ap.add_argument("--report", help="report path (default results/parity.md, or <out-dir>/parity.md "
                                     "when --out-dir is not the default)")
    ap.add_argument("--report-only", action="store_true", help="only write the report from the runs present")
    args = ap.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in args.variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v}; choose from {', '.join(VARIANTS)}")
    args.out_dir = os.path.abspath(args.out_dir)
    args.ablate_bin = os.path.abspath(args.ablate_bin)
    if args.report is None:
        args.report = DEFAULT_REPORT if args.out_dir == os.path.abspath(DEFAULT_OUT) else os.path.join(args.out_dir, "parity.md")
    failures = 0 if args.report_only else run_all(args)
    write_report(args)
    if failures:
        print(f"{failures} run(s) failed; rerun to retry them", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
