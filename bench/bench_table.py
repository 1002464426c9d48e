#!/usr/bin/env python3
"""Turns nnjit_bench_kernels JSON into a markdown table per family: GFLOP/s of nnjit and
oneDNN per shape, the speedup (oneDNN time / nnjit time), its geometric mean, and how
far the large layers are from the measured FMA peak.

    nnjit_bench_kernels --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
        --benchmark_format=json > kernels.json
    bench/bench_table.py kernels.json [--impl nnjit_avx2 --peak peak/fma_avx2] [--png chart.png]

With --png (matplotlib; run with /usr/bin/python3), also draws nnjit/oneDNN speedup per
layer, one panel per family, with the line at 1.0.
"""
import argparse
import json
import math


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json")
    ap.add_argument("--impl", default="nnjit", help="the nnjit column: nnjit or nnjit_<isa>")
    ap.add_argument("--peak", default="peak/fma", help="the benchmark giving the FMA peak")
    ap.add_argument("--png", help="write a chart of the speedups per layer to this file")
    args = ap.parse_args()

    runs = json.load(open(args.json))["benchmarks"]
    # With repetitions, take the median; without, the single run.
    have_median = any(b.get("aggregate_name") == "median" for b in runs)
    rows, order, peak = {}, [], None
    for b in runs:
        if have_median and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        if name == args.peak:
            peak = b["GFLOPS"]
            continue
        parts = name.split("/")
        if len(parts) != 3:
            continue
        family, shape, impl = parts
        key = (family, shape)
        if key not in rows:
            order.append(key)
            rows[key] = {}
        # Pooling reports bytes per second rather than GFLOPS.
        rows[key][impl] = (b.get("GFLOPS"), b["cpu_time"], b.get("label", ""))

    if peak:
        print(f"FMA peak ({args.peak}): {peak:.1f} GFLOP/s\n")
    chart = {}
    for family in dict.fromkeys(f for f, _ in order):
        print(f"### {family}\n")
        print("| shape | nnjit GFLOP/s | oneDNN GFLOP/s | speedup | nnjit kernel |")
        print("|---|---:|---:|---:|---|")
        speedups, big = [], []
        for f, shape in order:
            v = rows[(f, shape)]
            if f != family or args.impl not in v or "onednn" not in v:
                continue
            s = v["onednn"][1] / v[args.impl][1]
            speedups.append(s)
            chart.setdefault(family, []).append((shape, s))
            fields = dict((p[0], p[1:]) for p in shape.split("_") if p[:1] in "ck" and p[1:].isdigit())
            flops = v[args.impl][0]
            if peak and flops and int(fields.get("c", 0)) >= 64 and int(fields.get("k", 0)) >= 64:
                big.append(flops / peak)
            kernel = v[args.impl][2].split(" ")[0]
            gf = lambda x: "—" if x is None else f"{x:.1f}"
            print(f"| {shape} | {gf(flops)} | {gf(v['onednn'][0])} | {s:.2f} | {kernel} |")
        if speedups:
            g = math.exp(sum(map(math.log, speedups)) / len(speedups))
            print(f"\ngeometric mean speedup over {len(speedups)} shapes: {g:.3f}")
        if big:
            big.sort()
            below = sum(1 for x in big if x < 0.85)
            print(f"C and K >= 64: {len(big)} shapes, {big[0]*100:.0f}% to {big[-1]*100:.0f}% of peak "
                  f"(median {big[len(big)//2]*100:.0f}%), {below} below 85%")
        print()
    if args.png and chart:
        draw(chart, args.png)


def draw(chart, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    families = list(chart)
    fig, axes = plt.subplots(len(families), 1, figsize=(12, 2.6 * len(families)), squeeze=False)
    for ax, family in zip(axes[:, 0], families):
        shapes = [s for s, _ in chart[family]]
        values = [v for _, v in chart[family]]
        g = math.exp(sum(map(math.log, values)) / len(values))
        ax.bar(range(len(values)), values, color=["tab:green" if v >= 1 else "tab:red" for v in values])
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_title(f"{family}: oneDNN time / nnjit time per layer (geomean {g:.2f})", fontsize=9)
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels(shapes, rotation=70, fontsize=5, ha="right")
        ax.set_ylabel("speedup", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"chart written to {path}")


if __name__ == "__main__":
    main()
