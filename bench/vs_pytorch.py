#!/usr/bin/python3
"""casdm against PyTorch eager, side by side in one run, as ratios.

Runs casdm's benchmark (build/bench/casdm_bench_eager) and its PyTorch replica
(bench/pytorch_eager.py, the same model: tests hold it equal to casdm's on casdm's weights) on the
same workloads, each in a fresh process, alternating sides for `--rounds` rounds, and prints
per workload the median time of each side, speed = PyTorch's time / casdm's (> 1: casdm faster),
peak resident memory of each (over the process's memory before the model was built) and its ratio
(casdm / PyTorch, < 1: casdm smaller), FLOP per image and casdm's achieved TFLOP/s (and MFU with
--peak-tflops, the card's dense bf16 peak on a GPU).

  bench/vs_pytorch.py                                  # the main job's size on the CPU
  bench/vs_pytorch.py --config paper --device cuda --peak-tflops 989 --out docs/results/vs-pytorch
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# (workload, preset, batch): the list — training steps of DDPM_Eps, CasDM and CasDM with a
# feature loss at side 32; DDIM runs at batch 1 and 64
WORKLOADS = [
    ("train", "DDPM_Eps", 32),
    ("train", "CasDM", 32),
    ("train", "CasDM_LPIPS", 32),
    ("ddim", "DDPM_Eps", 1),
    ("ddim", "CasDM", 1),
    ("ddim", "DDPM_Eps", 64),
    ("ddim", "CasDM", 64),
]


def run_casdm(a, workload, preset, batch):
    cmd = [a.binary, "--config", a.config, "--batch", str(batch), "--steps", str(a.steps), "--feature-size",
           str(a.feature_size), "--threads", str(a.threads), "--device", a.device,
           f"--benchmark_filter=^{workload}/{preset}(/real_time)?$", f"--benchmark_min_time={a.min_time}",
           "--benchmark_format=json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"vs_pytorch: {' '.join(cmd)} failed:\n{r.stderr.strip()}")
    try:
        b = json.loads(r.stdout)["benchmarks"][0]
    except (ValueError, KeyError, IndexError):
        sys.exit(f"vs_pytorch: {' '.join(cmd)} gave no benchmark result:\n{r.stdout.strip()}")
    scale = {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b["time_unit"]]
    return dict(ms=b["real_time"] * scale, peak_mib=b["peak_mib"], flop_theta=b["flop_theta"],
                flop_phi=b["flop_phi"], iterations=b["iterations"])


def run_pytorch(a, workload, preset, batch):
    cmd = [a.python, os.path.join(HERE, "pytorch_eager.py"), "time", "--workload", workload, "--preset", preset,
           "--config", a.config, "--batch", str(batch), "--steps", str(a.steps), "--feature-size",
           str(a.feature_size), "--threads", str(a.threads), "--device", a.device, "--min-time", str(a.min_time)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"vs_pytorch: {' '.join(cmd)} failed:\n{r.stderr.strip()}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.path.join(HERE, "..", "build", "bench", "casdm_bench_eager"))
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--config", default="main", choices=["main", "paper"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=20, help="DDIM steps of a sampling run")
    ap.add_argument("--feature-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds each side times a workload per round")
    ap.add_argument("--train-batch", type=int, default=32, help="batch of the training steps (the paper: 128)")
    ap.add_argument("--only", default="", help="comma list of workload/preset/batch to run, e.g. train/CasDM/32")
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="the device's peak, for MFU")
    ap.add_argument("--out", default="", help="folder for results.json and results.md")
    a = ap.parse_args()
    if not os.access(a.binary, os.X_OK):
        sys.exit(f"vs_pytorch: {a.binary} is not built (cmake --build build --target casdm_bench_eager)")
    todo = [(w, p, a.train_batch if w == "train" else b) for w, p, b in WORKLOADS]
    if a.only:
        want = set(a.only.split(","))
        todo = [w for w in todo if f"{w[0]}/{w[1]}/{w[2]}" in want]
        if not todo:
            sys.exit(f"vs_pytorch: --only {a.only} names no workload")
    rows = []
    for workload, preset, batch in todo:
        ours, theirs = [], []
        for _ in range(a.rounds):  # alternate the sides so drifts of the machine hit both alike
            ours.append(run_casdm(a, workload, preset, batch))
            theirs.append(run_pytorch(a, workload, preset, batch))
        o_ms = statistics.median(r["ms"] for r in ours)
        p_ms = statistics.median(r["ms"] for r in theirs)
        o_mem = statistics.median(r["peak_mib"] for r in ours)
        p_mem = statistics.median(r["peak_mib"] for r in theirs)
        flop = theirs[0]["flop_per_image"]
        if (ours[0]["flop_theta"], ours[0]["flop_phi"]) != (theirs[0]["flop_theta"], theirs[0]["flop_phi"]):
            sys.exit(f"vs_pytorch: the two sides count other FLOP for {preset} — not the same network")
        tflops = flop * batch / (o_ms / 1e3) / 1e12
        row = dict(workload=workload, preset=preset, batch=batch, casdm_ms=o_ms, pytorch_ms=p_ms,
                   speed=p_ms / o_ms, casdm_peak_mib=o_mem, pytorch_peak_mib=p_mem,
                   memory=o_mem / p_mem if p_mem > 0 else float("nan"), flop_per_image=flop,
                   casdm_tflops=tflops, pytorch_tflops=flop * batch / (p_ms / 1e3) / 1e12,
                   casdm_all_ms=[r["ms"] for r in ours], pytorch_all_ms=[r["ms"] for r in theirs])
        if a.peak_tflops > 0:
            row["casdm_mfu"] = tflops / a.peak_tflops
        rows.append(row)
        print(f"{workload}/{preset}/b{batch}: casdm {o_ms:.1f} ms, PyTorch {p_ms:.1f} ms, speed {p_ms / o_ms:.2f}x, "
              f"peak {o_mem:.0f} vs {p_mem:.0f} MiB", flush=True)
    what = "DDIM {} steps".format(a.steps)
    lines = [f"| workload | batch | casdm ms | PyTorch eager ms | speed (PyTorch/casdm) | casdm peak MiB | "
             f"PyTorch peak MiB | memory (casdm/PyTorch) | GFLOP/image | casdm TFLOP/s"
             + (" | MFU |" if a.peak_tflops > 0 else " |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if a.peak_tflops > 0 else "")]
    for r in rows:
        name = f"{'train step' if r['workload'] == 'train' else what} {r['preset']}"
        lines.append(f"| {name} | {r['batch']} | {r['casdm_ms']:.1f} | {r['pytorch_ms']:.1f} | {r['speed']:.2f}x | "
                     f"{r['casdm_peak_mib']:.0f} | {r['pytorch_peak_mib']:.0f} | {r['memory']:.2f}x | "
                     f"{r['flop_per_image'] / 1e9:.2f} | {r['casdm_tflops']:.3f}"
                     + (f" | {100 * r['casdm_mfu']:.1f} % |" if a.peak_tflops > 0 else " |"))
    table = "\n".join(lines)
    print()
    print(table)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        meta = dict(config=a.config, device=a.device, threads=a.threads, rounds=a.rounds, min_time=a.min_time,
                    ddim_steps=a.steps, feature_size=a.feature_size, date=time.strftime("%Y-%m-%d"))
        with open(os.path.join(a.out, "results.json"), "w") as f:
            json.dump(dict(meta=meta, rows=rows), f, indent=1)
        with open(os.path.join(a.out, "results.md"), "w") as f:
            f.write(f"`bench/vs_pytorch.py` ({json.dumps(meta)})\n\n{table}\n")


if __name__ == "__main__":
    main()
