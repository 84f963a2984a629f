#!/usr/bin/env python3
"""Turns convkit_sparse_bench JSON (run with --benchmark_repetitions) into the markdown table
of bench/results/sparse_conv.md: median times, the sparse/dense speedup per sparsity, the
spread of the repetitions, and the crossover sparsity of each layer.

  convkit_sparse_bench --benchmark_repetitions=5 --benchmark_out=run.json --benchmark_out_format=json
  python3 bench/conv_sparse_table.py run.json > table.md
"""
import json
import statistics
import sys
from collections import defaultdict


def main(path):
    with open(path) as f:
        data = json.load(f)
    times = defaultdict(list)  # run name -> real times (ms) of the repetitions
    for b in data["benchmarks"]:
        if b.get("run_type") == "iteration":
            times[b["run_name"].removesuffix("/real_time")].append(b["real_time"])
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    spread = {k: (max(v) - min(v)) / statistics.median(v) for k, v in times.items()}
    ctx = data["context"]
    print(f"Host {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs at "
          f"{ctx.get('mhz_per_cpu', '?')} MHz, run {ctx.get('date', '?')}; "
          f"{len(next(iter(times.values())))} repetitions per case. Cells: median ms "
          f"(dense median / sparse median).\n")
    groups = sorted({k.split("/", 1)[1] for k in med if k.startswith("dense/")})
    percents = sorted({int(k.rsplit("/s", 1)[1]) for k in med if k.startswith("sparse/")})
    print("| layer | layout | threads | dense ms | " + " | ".join(f"{p}%" for p in percents) +
          " | crossover (medians) | crossover (minimums) |")
    print("|" + "---|" * (6 + len(percents)))
    worst = {"medians": 0.0, "minimums": 0.0}
    for g in groups:
        layer, layout, threads = g.split("/")
        cells = [f"{med[f'sparse/{g}/s{p}']:.2f} ({med['dense/' + g] / med[f'sparse/{g}/s{p}']:.2f}x)"
                 for p in percents]
        crosses = []
        for kind, t in (("medians", med), ("minimums", best)):
            c = crossover(t["dense/" + g], [(p, t[f"sparse/{g}/s{p}"]) for p in percents])
            worst[kind] = max(worst[kind], 100.0 if c is None else c)
            crosses.append("never (to 98%)" if c is None else f"{c:.0f}%")
        print(f"| {layer} | {layout} | {threads[1:]} | {med['dense/' + g]:.2f} | " +
              " | ".join(cells) + f" | {crosses[0]} | {crosses[1]} |")
    print(f"\nLargest crossover: {worst['medians']:.0f}% from medians, {worst['minimums']:.0f}% "
          f"from minimums. Spread of the repetitions ((max - min) / median): median "
          f"{100 * statistics.median(spread.values()):.1f}%, worst "
          f"{100 * max(spread.values()):.1f}% ({max(spread, key=spread.get)}).")


def crossover(dense, pts):
    """Lowest sparsity from which the sparse path stays faster, interpolated linearly
    between the measured sparsities; None when it is not faster at the highest one."""
    if pts[-1][1] >= dense:
        return None
    for i in range(len(pts) - 1, -1, -1):
        if pts[i][1] >= dense:
            (s0, t0), (s1, t1) = pts[i], pts[i + 1]
            return s0 + (s1 - s0) * (t0 - dense) / (t0 - t1)
    return 0.0


if __name__ == "__main__":
    main(sys.argv[1])
