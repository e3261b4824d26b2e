"""The speed-up of the extract and train stages under torchrun (a benchmark script, not a test).

For each stage it runs the stage's own CLI as the DVC command would, once as one process
(``python -m pipeline.<stage>``) and once per process count N (``torchrun --standalone
--nproc_per_node N -m pipeline.<stage>``), every extraction into an empty feature store, and
prints the wall time, the speed-up and whether the outputs are byte-identical to the one-process
run's. Wall time includes each process's start (imports, model load), as a user's run does.

    python benchmarks/parallel_speed.py [--manifest data/prepared] [--features data/features]
        [--stages audio visual text train] [--processes 2] [--device cpu] [--seeds 0,1,2]

Extraction bytes depend on neither the process nor the thread count (docs/reproducibility.md). A
training computes with the top-level ``threads`` param's torch threads in every process (2 by
default, whatever torchrun sets): the params' value first, then ``threads=1`` (faster here, other
last bits); each multi-process row is compared with one process at the same ``threads``.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def digest(folder: Path) -> str:
    """One hash of every file under ``folder`` (names and bytes)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def launch(processes: int, module: str, args: list[str]) -> tuple[float, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    prefix = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    started = time.perf_counter()
    done = subprocess.run([*prefix, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{module} with {processes} process(es) failed:\n"
                         f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=REPO / "data/prepared")
    parser.add_argument("--features", type=Path, default=REPO / "data/features")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--stages", nargs="+", default=["audio", "visual", "text", "train"])
    parser.add_argument("--processes", type=int, nargs="+", default=[2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", default="0,1,2", help="the train stage's seeds (one process each)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores; manifest {args.manifest}; device {args.device}")
    print(f"{'stage':<20} {'processes':>9} {'wall s':>8} {'speed-up':>8} {'in-stage s':>10} "
          f"{'speed-up':>8}  outputs")
    common = ["--params", str(args.params), "--set", f"device={args.device}"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for stage in args.stages:
            if stage == "train":         # the params' threads per process, then one thread each
                module = "pipeline.train"
                runs = [*[("train", n, None) for n in [1, *args.processes]],
                        *[("train, threads=1", n, 1) for n in [1, *args.processes]]]
            else:
                module = "pipeline.extract"
                runs = [(f"extract@{stage}", n, None) for n in [1, *args.processes]]
            base_s, base_inside, reference = None, None, {}
            for i, (label, n, threads) in enumerate(runs):
                out = tmp / f"{stage}-{i}"
                if stage == "train":
                    stage_args = [*common, "--set", f"train.seeds=[{args.seeds}]", "--manifest",
                                  str(args.manifest), "--features", str(args.features), "--out", str(out),
                                  *(["--set", f"threads={threads}"] if threads else [])]
                else:
                    stage_args = [stage, *common, "--manifest", str(args.manifest), "--out", str(out),
                                  "--store", str(tmp / f"store-{stage}-{i}")]
                seconds, stdout = launch(n, module, stage_args)
                files = digest(out)
                # extraction: the stage's own clock, from the manifest to the written cache (no
                # interpreter start, no model load): what a larger corpus scales with
                found = re.search(r"total ([0-9.]+) s\)", stdout)
                inside = float(found.group(1)) if found else float("nan")
                if base_s is None:
                    base_s, base_inside = seconds, inside
                reference.setdefault(threads, files)       # one process, the same threads param
                same = "" if n == 1 else f"identical to 1 process: {files == reference[threads]}"
                stage_clock = (f"{inside:>10.1f} {base_inside / inside:>7.2f}x" if found
                               else f"{'—':>10} {'—':>8}")
                print(f"{label:<20} {n:>9} {seconds:>8.1f} {base_s / seconds:>7.2f}x {stage_clock}  {same}",
                      flush=True)


if __name__ == "__main__":
    main()
