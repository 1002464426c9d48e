#!/usr/bin/env python3
"""Turns nnjit_bench_kernels JSON into a markdown table per family: GFLOP/s of nnjit and
oneDNN per shape, the speedup (oneDNN time / nnjit time), its geometric mean, and how
far the large layers are from the measured FMA peak.

    nnjit_bench_kernels --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
        --benchmark_format=json > kernels.json
    bench/bench_table.py kernels.json [--impl nnjit_avx2 --peak peak/fma_avx2]
"""
import argparse
import json
import math


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json")
    ap.add_argument("--impl", default="nnjit", help="the nnjit column: nnjit or nnjit_<isa>")
    ap.add_argument("--peak", default="peak/fma", help="the benchmark giving the FMA peak")
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
        rows[key][impl] = (b["GFLOPS"], b["cpu_time"], b.get("label", ""))

    if peak:
        print(f"FMA peak ({args.peak}): {peak:.1f} GFLOP/s\n")
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
            fields = dict((p[0], p[1:]) for p in shape.split("_") if p[:1] in "ck" and p[1:].isdigit())
            if peak and int(fields.get("c", 0)) >= 64 and int(fields.get("k", 0)) >= 64:
                big.append(v[args.impl][0] / peak)
            kernel = v[args.impl][2].split(" ")[0]
            print(f"| {shape} | {v[args.impl][0]:.1f} | {v['onednn'][0]:.1f} | {s:.2f} | {kernel} |")
        if speedups:
            g = math.exp(sum(map(math.log, speedups)) / len(speedups))
            print(f"\ngeometric mean speedup over {len(speedups)} shapes: {g:.3f}")
        if big:
            big.sort()
            below = sum(1 for x in big if x < 0.85)
            print(f"C and K >= 64: {len(big)} shapes, {big[0]*100:.0f}% to {big[-1]*100:.0f}% of peak "
                  f"(median {big[len(big)//2]*100:.0f}%), {below} below 85%")
        print()


if __name__ == "__main__":
    main()
