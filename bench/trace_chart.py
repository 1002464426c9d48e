#!/usr/bin/python3
"""Draws one run of an `nnjit profile --trace` Chrome trace as a timeline PNG (each step a
bar, coloured by kernel family, the longest labelled) — a picture of what Perfetto shows.

    bench/trace_chart.py trace.json out.png [--run N]
"""
import argparse
import json


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("png")
    ap.add_argument("--run", type=int, default=-1, help="which run (default: the last)")
    args = ap.parse_args()
    events = [e for e in json.load(open(args.trace))["traceEvents"] if e.get("ph") == "X"]
    runs, current = [], []
    for e in events:  # a run starts again at step 0
        if e["args"]["step"] == 0 and current:
            runs.append(current)
            current = []
        current.append(e)
    runs.append(current)
    run = runs[args.run]
    t0 = run[0]["ts"]

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    families = {}
    fig, ax = plt.subplots(figsize=(14, 3.2))
    longest = sorted(run, key=lambda e: -e["dur"])[:6]
    for e in run:
        kernel = e["args"]["kernel"]
        family = kernel.split("[")[0].split("_")[1] if kernel.startswith("f32_") else kernel.split("[")[0].split("_")[0]
        color = families.setdefault(family, f"C{len(families) % 10}")
        ax.barh(0, e["dur"] / 1000, left=(e["ts"] - t0) / 1000, color=color, edgecolor="white", linewidth=0.4)
        if e in longest:
            ax.text((e["ts"] - t0 + e["dur"] / 2) / 1000, 0.45, f'#{e["args"]["step"]} {e["name"][:22]}\n'
                    f'{e["args"]["gflops"]:.0f} GFLOP/s', ha="center", fontsize=6)
    ax.set_yticks([])
    ax.set_xlabel("ms")
    ax.set_ylim(-0.6, 1.0)
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c in families.values()], labels=list(families),
              fontsize=7, ncol=len(families), loc="upper right")
    total = (run[-1]["ts"] + run[-1]["dur"] - t0) / 1000
    ax.set_title(f"one run, {len(run)} steps, {total:.2f} ms (nnjit profile --trace)", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)


if __name__ == "__main__":
    main()
