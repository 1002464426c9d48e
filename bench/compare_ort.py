#!/usr/bin/python3
"""nnjit against ONNX Runtime 1.30 (npm onnxruntime-node, CPU) on every zoo model, side by side.

    bench/compare_ort.py [--nnjit build/bin/nnjit] [--models mobilenet_v2,resnet50]
                         [--threads 1,2] [--iterations 50] [--rounds 3] [--gap-ms 0] [--out bench/results]

For each model and thread count it alternates the two runtimes `--rounds` times (nnjit
bench --json, then bench/ort/runner.mjs), takes the median of each side's p50 latency and
load time (nnjit: parse + optimise + plan + compile; ORT: session creation), and prints a
markdown table of medians and ratios (ORT / nnjit: above 1 means nnjit is faster). It
writes ort_compare.md, ort_compare.json and ort_compare.png into --out.

With --gap-ms G both sides idle G ms before each timed run (a service whose requests come
spaced out: threads asleep, caches cooled); the files are then ort_compare_gapGms.*.

ONNX Runtime is installed on first use with
`npm install --ignore-scripts --prefix bench/ort onnxruntime-node@1.30.0` (its install
script would try a download; the CPU library ships in the package).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORT_DIR = os.path.join(ROOT, "bench", "ort")


def ensure_ort():
    if os.path.isdir(os.path.join(ORT_DIR, "node_modules", "onnxruntime-node")):
        return
    print("installing onnxruntime-node@1.30.0 into bench/ort (npm, --ignore-scripts)", file=sys.stderr)
    subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", ORT_DIR,
                    "onnxruntime-node@1.30.0"], check=True, stdout=subprocess.DEVNULL)


def run_nnjit(nnjit, model, inp, threads, iterations, warmup, gap_ms):
    out = subprocess.run([nnjit, "bench", model, "--input", inp, "--threads", str(threads), "--iterations",
                          str(iterations), "--warmup", str(warmup), "--gap-ms", str(gap_ms), "--json"], check=True,
                         capture_output=True, text=True).stdout
    j = json.loads(out.strip().splitlines()[-1])
    return {"p50_ms": j["latency_ms"]["p50"], "load_ms": j["load_ms"]["total"]}


def run_ort(model, inp, threads, iterations, warmup, gap_ms):
    out = subprocess.run(["node", os.path.join(ORT_DIR, "runner.mjs"), model, inp, str(threads), str(iterations),
                          str(warmup), str(gap_ms)], check=True, capture_output=True, text=True, cwd=ORT_DIR).stdout
    j = json.loads(out.strip().splitlines()[-1])
    return {"p50_ms": j["p50_ms"], "load_ms": j["load_ms"]}


def draw(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = list(dict.fromkeys(r["model"] for r in rows))
    threads = sorted({r["threads"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / len(threads)
    for ax, key, title in ((axes[0], "latency_ratio", "latency: ORT p50 / nnjit p50"),
                           (axes[1], "load_ratio", "load: ORT session creation / nnjit load")):
        for k, t in enumerate(threads):
            vals = [next((r[key] for r in rows if r["model"] == m and r["threads"] == t), 0) for m in models]
            ax.bar([i + k * width for i in range(len(models))], vals, width, label=f"{t} thread(s)")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks([i + width * (len(threads) - 1) / 2 for i in range(len(models))])
        ax.set_xticklabels(models, rotation=30, ha="right", fontsize=8)
        ax.set_title(title + " (above 1: nnjit ahead)", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nnjit", default=os.path.join(ROOT, "build", "bin", "nnjit"))
    ap.add_argument("--zoo", default=os.path.join(ROOT, "models"))
    ap.add_argument("--models", help="comma-separated names (default: every model in zoo.json)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gap-ms", type=float, default=0, help="idle ms before each timed run (default 0)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    args.zoo = os.path.abspath(args.zoo)  # ONNX Runtime's runner resolves paths from its own folder

    ensure_ort()
    zoo = json.load(open(os.path.join(args.zoo, "zoo.json")))
    names = [m["name"] for m in zoo["models"]] if isinstance(zoo, dict) else [m["name"] for m in zoo]
    if args.models:
        names = [n for n in args.models.split(",") if n]
    rows = []
    for name in names:
        model = os.path.join(args.zoo, name + ".onnx")
        inp = os.path.join(args.zoo, name + ".input.npy")
        for t in (int(x) for x in args.threads.split(",")):
            nn, ort = [], []
            for _ in range(args.rounds):  # alternate, so drifts of a shared machine hit both
                nn.append(run_nnjit(args.nnjit, model, inp, t, args.iterations, args.warmup, args.gap_ms))
                ort.append(run_ort(model, inp, t, args.iterations, args.warmup, args.gap_ms))
            med = lambda runs, key: statistics.median(r[key] for r in runs)
            row = {"model": name, "threads": t,
                   "ort_p50_ms": med(ort, "p50_ms"), "nnjit_p50_ms": med(nn, "p50_ms"),
                   "ort_load_ms": med(ort, "load_ms"), "nnjit_load_ms": med(nn, "load_ms")}
            row["latency_ratio"] = row["ort_p50_ms"] / row["nnjit_p50_ms"]
            row["load_ratio"] = row["ort_load_ms"] / row["nnjit_load_ms"]
            rows.append(row)
            print(f"{name} threads={t}: ORT {row['ort_p50_ms']:.2f} ms, nnjit {row['nnjit_p50_ms']:.2f} ms "
                  f"({row['latency_ratio']:.2f}x); load {row['ort_load_ms']:.0f} / {row['nnjit_load_ms']:.0f} ms",
                  file=sys.stderr)

    lines = ["| model | threads | ORT p50 ms | nnjit p50 ms | ORT / nnjit | ORT load ms | nnjit load ms | "
             "load ORT / nnjit |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['threads']} | {r['ort_p50_ms']:.2f} | {r['nnjit_p50_ms']:.2f} | "
                     f"{r['latency_ratio']:.2f} | {r['ort_load_ms']:.0f} | {r['nnjit_load_ms']:.0f} | "
                     f"{r['load_ratio']:.2f} |")
    table = "\n".join(lines)
    print(table)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, "ort_compare" + (f"_gap{args.gap_ms:g}ms" if args.gap_ms > 0 else ""))
    spaced = f", each after {args.gap_ms:g} ms idle" if args.gap_ms > 0 else ""
    open(stem + ".md", "w").write(
        f"ONNX Runtime 1.30 (npm onnxruntime-node, CPU, sequential, all optimisations) vs nnjit; "
        f"medians of {args.rounds} alternated rounds of {args.iterations} runs{spaced}.\n\n" + table + "\n")
    json.dump(rows, open(stem + ".json", "w"), indent=1)
    draw(rows, stem + ".png")


if __name__ == "__main__":
    main()
