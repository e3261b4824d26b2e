"""`dvc repro` of demo -> prepare -> extract@* in a scratch copy of the repository."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from extractors.cache import read_features
from pipeline import manifest
from tests.conftest import SMALL_IEMOCAP, SMALL_MELD, copy_repo, run

pytestmark = pytest.mark.slow


@pytest.fixture
def repo(tmp_path) -> Path:
    """Tracked files of this repository, in a fresh git repo, with small demo sizes."""
    dest = copy_repo(tmp_path / "repo", stale=("dvc.lock", "data/.gitignore", "data/prepared/.gitignore"))
    set_params(dest, {"demo": {"iemocap": SMALL_IEMOCAP, "meld": SMALL_MELD}})
    visual = yaml.safe_load((dest / "params.yaml").read_text())["extract"]["visual"]
    visual["torchvision"].update(frames=1, image_size=32)
    set_params(dest, {"extract": {"visual": visual}, "train": {"epochs": 3, "warm_up_epochs": 1}})
    return dest


def set_params(repo: Path, updates: dict) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in updates.items():
        for key, value in values.items():
            params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def stale_stages(repo: Path) -> set[str]:
    return set(json.loads(run(["dvc", "status", "--json"], repo)))   # the benchmark is its own project


def test_repro_builds_the_manifest_and_tracks_params(repo):
    out = run(["dvc", "repro"], repo)
    for stage in ("demo", "prepare", "extract@text", "extract@audio", "extract@visual", "train",
                  "evaluate"):
        assert f"Running stage '{stage}'" in out
    metrics = json.loads((repo / "metrics" / "iemocap.json").read_text())
    assert 0 <= metrics["test_wa_f1"]["mean"] <= 1 and metrics["counts"]["test"] > 0
    assert (repo / "metrics" / "iemocap_confusion.png").stat().st_size > 1000
    assert (repo / "metrics" / "iemocap_curves.png").stat().st_size > 1000
    # The root view is clean after one repro, and checkout works (no benchmark outputs in the way).
    assert stale_stages(repo) == set()
    assert "Checkout failed" not in run(["dvc", "checkout"], repo)
    m = manifest.read(repo / "data" / "prepared")
    assert m.corpus == "iemocap" and set(m.table["split"]) == {"train", "dev", "test"}
    wav = m.media_path(m.table["audio_path"].iat[0])
    assert wav.is_file() and wav.is_relative_to(repo)  # resolved from the manifest, not the cwd
    summary = json.loads((repo / "data" / "prepared" / "summary.json").read_text())
    assert summary["test"]["utterances"] == (m.table["split"] == "test").sum()
    assert "data/prepared/summary.json" in run(["dvc", "metrics", "show"], repo)
    assert stale_stages(repo) == set()

    ids = m.table["utterance_id"].tolist()
    dims = {mod: read_features(repo / "data" / "features" / mod, ids).dim
            for mod in ("text", "audio", "visual")}
    assert dims == {"text": 384, "audio": 1582, "visual": 1024}

    # Swapping one modality's extractor params makes only that extraction (and what consumes the
    # features: train, evaluate) out of date, not the other extractions.
    extract = yaml.safe_load((repo / "params.yaml").read_text())["extract"]
    for modality, key, value in [("audio", "feature_set", "eGeMAPSv02"), ("text", "pooling", "cls"),
                                 ("visual", "frames", 2)]:
        family = extract[modality]["name"]
        changed = {**extract[modality], family: {**extract[modality][family], key: value}}
        set_params(repo, {"extract": {**extract, modality: changed}})
        assert stale_stages(repo) == {f"extract@{modality}", "train", "evaluate"}
    set_params(repo, {"extract": extract})
    assert stale_stages(repo) == set()

    # Swapping an extractor family is one key: each family keeps its own params under its name.
    set_params(repo, {"extract": {**extract, "audio": {**extract["audio"], "name": "librosa"}}})
    assert stale_stages(repo) == {"extract@audio", "train", "evaluate"}
    run(["dvc", "repro", "extract@audio"], repo)
    librosa = read_features(repo / "data" / "features" / "audio", ids, "librosa", extract["audio"]["librosa"])
    assert librosa.dim == 4 * (2 * extract["audio"]["librosa"]["n_mfcc"] + 7) + 2
    set_params(repo, {"extract": extract})
    run(["dvc", "repro"], repo)   # back to openSMILE (re-extracted: issue #9 item 1 is still open)

    set_params(repo, {"prepare": {"on_missing_media": "drop"}})
    assert stale_stages(repo) == {"prepare"}
    set_params(repo, {"prepare": {"on_missing_media": "keep"}, "demo": {"seed": 99}})
    assert stale_stages(repo) == {"demo"}  # prepare follows when demo's output changes
    run(["dvc", "repro", "prepare"], repo)
    assert stale_stages(repo) == {"extract@text", "extract@audio", "extract@visual", "train", "evaluate"}

    # Switching the corpus is a params change: the MELD layout, read by the MELD adapter.
    set_params(repo, {"demo": {"layout": "meld"},
                      "prepare": {"corpus": "meld", "root": "data/demo/MELD.Raw"}})
    run(["dvc", "repro", "prepare"], repo)
    m = manifest.read(repo / "data" / "prepared")
    assert m.corpus == "meld" and m.labels[0] == "neutral"
    errors = (repo / "data" / "prepared" / "errors.csv").read_text()
    assert "missing file" in errors and "unreadable file" in errors


def test_prepare_cli_reports_bad_params(repo):
    set_params(repo, {"prepare": {"corpus": "friends"}})
    done = subprocess.run([sys.executable, "-m", "pipeline.prepare"], cwd=repo,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "prepare: error: prepare.corpus: unknown corpus 'friends'" in done.stderr
