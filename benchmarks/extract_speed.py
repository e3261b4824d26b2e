"""Extraction speed and memory on the demo corpus (a benchmark script, not a test).

For each modality's extractor as configured in params.yaml (``extract.<modality>``) it prints:

- end-to-end utterances/s: ``extractors.runner.extract`` from manifest rows to a finished cache
  (media decoding, face detection, model, chunk writes), with the extractor already loaded;
- model-only utterances/s at the same batch size: ``forward`` on inputs decoded beforehand;
- their ratio (goal: >= 70% for text and visual), and for audio the real-time factor
  (seconds of audio per second of processing, pinned to one CPU core; goal >= 50x);
- peak resident memory of the whole process at 1x and 4x the corpus (the 4x manifest repeats
  every utterance under new ids): it must not grow with the number of utterances.

Each (modality, scale) runs in a fresh subprocess so peak memory is its own.

    python benchmarks/extract_speed.py [--manifest data/prepared] [--modalities text audio visual]
                                       [--device cuda] [--precision fp16]

``--device``/``--precision`` default to the params file's top-level ``device`` and ``precision``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def child(modality: str, scale: int, manifest_dir: Path, params_file: Path, device: str | None,
          precision: str | None) -> dict:
    import pandas as pd

    from config.params import load_params, load_section
    from extractors import get_extractor, section_params
    from extractors.base import UtteranceFailure
    from extractors.runner import extract
    from extractors.store import FeatureStore
    from pipeline.lib import manifest

    if modality == "audio":
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})   # one core
    section = load_section("extract", params_file)[modality]
    m = manifest.read(manifest_dir)
    table = pd.concat([m.table.assign(utterance_id=m.table["utterance_id"] + f"#{k}")
                       for k in range(scale)], ignore_index=True)
    params = section_params(section)
    top = load_params(params_file)
    extractor = get_extractor(modality, section["name"], params, device or top["device"],
                              precision or top["precision"])
    with tempfile.TemporaryDirectory() as out:
        # A fresh store: nothing computed before may be reused, everything is measured.
        meta = extract(table, m.media_path, extractor, Path(out) / "cache", params=params,
                       store=FeatureStore(Path(out) / "store"),
                       chunk_size=int(section.get("chunk_size", 128)), progress=False,
                       max_failed_fraction=1.0)
    result = {"modality": modality, "extractor": section["name"], "scale": scale,
              "compute": extractor.full_identity().get("compute", {"device": "cpu"}),
              "utterances": len(table), "end_to_end_utt_per_s": meta["timings"]["utt_per_s"],
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if scale == 1:
        # Same batching as the runner at its best: every row sorted by the extractor's order key.
        rows = sorted((r for _, r in m.table.iterrows()), key=extractor.order_key)
        inputs = []
        for r in rows:
            try:
                inputs.append(extractor.load(r, m.media_path))
            except UtteranceFailure:
                pass  # failures are counted by the end-to-end run
        bs = extractor.batch_size
        started = time.perf_counter()
        for i in range(0, len(inputs), bs):
            extractor.forward(inputs[i:i + bs])
        model_s = time.perf_counter() - started
        result["model_only_utt_per_s"] = len(inputs) / model_s
        result["ratio"] = result["end_to_end_utt_per_s"] / result["model_only_utt_per_s"]
        if modality == "audio":
            seconds = sum(len(x) for x in inputs) / 16_000
            result["audio_seconds"] = seconds
            result["realtime_factor_end_to_end"] = seconds / meta["timings"]["total_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=REPO / "data" / "prepared")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--modalities", nargs="+", default=["text", "audio", "visual"])
    parser.add_argument("--scales", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--device", help="auto | cpu | cuda | cuda:<n> (default: the params file's)")
    parser.add_argument("--precision", help="fp32 | fp16 | bf16 (default: the params file's)")
    parser.add_argument("--child", nargs=2, metavar=("MODALITY", "SCALE"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.manifest, args.params, args.device,
                               args.precision)))
        return
    import torch

    print(f"# {os.cpu_count()} CPUs, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"CUDA {torch.cuda.is_available()}; manifest {args.manifest}")
    for modality in args.modalities:
        for scale in args.scales:
            switches = [f"--{k}={v}" for k, v in (("device", args.device), ("precision", args.precision))
                        if v]
            done = subprocess.run([sys.executable, __file__, "--manifest", str(args.manifest),
                                   "--params", str(args.params), *switches, "--child", modality, str(scale)],
                                  capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if done.returncode:
                print(done.stderr, file=sys.stderr)
                raise SystemExit(done.returncode)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            compute = "/".join(str(v) for v in r["compute"].values())
            line = (f"{r['modality']:>6} {r['extractor']:<12} {compute:<10} x{scale} {r['utterances']:>5} "
                    f"utts: "
                    f"end-to-end {r['end_to_end_utt_per_s']:7.1f} utt/s, peak RSS {r['peak_rss_mb']:6.0f} MB")
            if "ratio" in r:
                line += (f", model-only {r['model_only_utt_per_s']:7.1f} utt/s, "
                         f"end-to-end/model-only {100 * r['ratio']:.0f}%")
            if "realtime_factor_end_to_end" in r:
                line += f", {r['realtime_factor_end_to_end']:.0f}x real time on 1 core"
            print(line, flush=True)


if __name__ == "__main__":
    main()
