"""`dvc repro` of demo -> prepare -> extract@* in a scratch copy of the repository."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from extractors.cache import read_features
from pipeline.cli import TRACE_ENV
from pipeline.lib import manifest
from tests.conftest import REPO, SMALL_IEMOCAP, SMALL_MELD, copy_repo, run, untracked_imports

pytestmark = pytest.mark.slow



def make_exps_command() -> list[str]:
    """``make exps``'s dvc command, read from the Makefile (what the README tells users to run)."""
    makefile = (REPO / "Makefile").read_text()
    drop = re.search(r"^EXP_DROP := (.+)$", makefile, re.M).group(1).replace("$$", "$")
    recipe = next(x for x in makefile.splitlines() if x.startswith("\t$(BIN)/dvc exp show"))
    words = recipe.split("/dvc ", 1)[1].split()
    return ["dvc", *[drop if w == "'$(EXP_DROP)'" else w for w in words]]


@pytest.fixture
def repo(tmp_path) -> Path:
    """Tracked files of this repository, in a fresh git repo, with small demo sizes."""
    dest = copy_repo(tmp_path / "repo", stale=("dvc.lock", "data/.gitignore", "data/prepared/.gitignore"))
    set_params(dest, {"demo": {"iemocap": SMALL_IEMOCAP, "meld": SMALL_MELD}})
    extract = yaml.safe_load((dest / "params.yaml").read_text())["extract"]
    extract["visual"]["torchvision"].update(frames=1, image_size=32)
    for modality in ("audio", "visual"):   # 2 of the small MELD demo's 19 clips are broken
        extract[modality]["max_failed_fraction"] = 0.25
    set_params(dest, {"extract": extract, "train": {"epochs": 3, "warm_up_epochs": 1}})
    return dest


def set_params(repo: Path, updates: dict) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in updates.items():
        for key, value in values.items():
            params[section][key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def stale_stages(repo: Path) -> set[str]:
    return set(json.loads(run(["dvc", "status", "--json"], repo)))   # the benchmark is its own project


def test_repro_builds_the_manifest_and_tracks_params(repo, tmp_path, monkeypatch):
    monkeypatch.setenv(TRACE_ENV, str(tmp_path / "imports"))
    out = run(["dvc", "repro"], repo)
    for stage in ("demo", "prepare", "finetune", "extract@text", "extract@audio", "extract@visual",
                  "train", "evaluate"):
        assert f"Running stage '{stage}'" in out
    # Every project file a stage imported is one of its DVC deps (or inside one): no drift.
    assert untracked_imports(repo, repo, tmp_path / "imports") == {}
    monkeypatch.delenv(TRACE_ENV)
    metrics = json.loads((repo / "metrics" / "ambdsgdn.json").read_text())
    assert 0 <= metrics["test"]["wa_f1"] <= 1 and metrics["seeds"] == 1
    details = json.loads((repo / "metrics" / "ambdsgdn.details.json").read_text())
    assert details["counts"]["test"] > 0 and details["corpus"] == "iemocap"
    assert (repo / "metrics" / "ambdsgdn_confusion.png").stat().st_size > 1000
    assert (repo / "metrics" / "ambdsgdn_curves.png").stat().st_size > 1000
    # dvc metrics show lists the scores only (corpus statistics and provenance are not metrics).
    shown = run(["dvc", "metrics", "show", "--md"], repo)
    assert "test.wa_f1" in shown and "dialogues" not in shown and "identity" not in shown
    assert max(map(len, shown.splitlines())) < 160
    # The root view is clean after one repro, and checkout works (no benchmark outputs in the way).
    assert stale_stages(repo) == set()
    assert "Checkout failed" not in run(["dvc", "checkout"], repo)
    m = manifest.read(repo / "data" / "prepared")
    assert m.corpus == "iemocap" and set(m.table["split"]) == {"train", "dev", "test"}
    wav = m.media_path(m.table["audio_path"].iat[0])
    assert wav.is_file() and wav.is_relative_to(repo)  # resolved from the manifest, not the cwd
    summary = json.loads((repo / "data" / "prepared" / "summary.json").read_text())
    assert summary["test"]["utterances"] == (m.table["split"] == "test").sum()
    assert stale_stages(repo) == set()

    ids = m.table["utterance_id"].tolist()
    dims = {mod: read_features(repo / "data" / "features" / mod, ids).dim
            for mod in ("text", "audio", "visual")}
    assert dims == {"text": 384, "audio": 1582, "visual": 1024}

    # Swapping one modality's extractor params makes only that extraction (and what consumes the
    # features: train, evaluate, export) out of date, not the other extractions.
    extract = yaml.safe_load((repo / "params.yaml").read_text())["extract"]
    for modality, key, value in [("audio", "feature_set", "eGeMAPSv02"), ("text", "pooling", "cls"),
                                 ("visual", "frames", 2)]:
        family = extract[modality]["name"]
        changed = {**extract[modality], family: {**extract[modality][family], key: value}}
        set_params(repo, {"extract": {**extract, modality: changed}})
        assert stale_stages(repo) == {f"extract@{modality}", "train", "evaluate", "export"}
    set_params(repo, {"extract": extract})
    assert stale_stages(repo) == set()

    # Swapping an extractor family is one key: each family keeps its own params under its name.
    set_params(repo, {"extract": {**extract, "audio": {**extract["audio"], "name": "librosa"}}})
    assert stale_stages(repo) == {"extract@audio", "train", "evaluate", "export"}
    run(["dvc", "repro", "extract@audio"], repo)
    librosa = read_features(repo / "data" / "features" / "audio", ids, "librosa", extract["audio"]["librosa"])
    assert librosa.dim == 4 * (2 * extract["audio"]["librosa"]["n_mfcc"] + 7) + 2
    set_params(repo, {"extract": extract})
    # Back to openSMILE: DVC restores the earlier output from its run-cache; without the run-cache
    # (forced) the stage runs and every vector comes from the feature store: nothing is computed.
    assert "Stage 'extract@audio' is cached" in run(["dvc", "repro"], repo)
    again = run(["dvc", "repro", "--force", "--single-item", "extract@audio"], repo)
    assert f"{len(ids)} from the store" in again and " 0 computed" in again
    assert stale_stages(repo) == set()   # byte-identical output: train and evaluate stay valid

    set_params(repo, {"prepare": {"on_missing_media": "drop"}})
    assert stale_stages(repo) == {"prepare"}
    set_params(repo, {"prepare": {"on_missing_media": "keep"}, "demo": {"seed": 99}})
    assert stale_stages(repo) == {"demo"}  # prepare follows when demo's output changes
    run(["dvc", "repro", "prepare"], repo)
    # finetune reads the manifest too (disabled, it only rewrites its marker)
    assert stale_stages(repo) == {"finetune", "extract@text", "extract@audio", "extract@visual", "train",
                                  "evaluate", "export"}

    # Switching the corpus is a params change: the MELD layout, recognised by prepare.corpus=auto.
    # And back: every stage is restored or served from the store in seconds.
    set_params(repo, {"demo": {"layout": "meld", "seed": 13}, "prepare": {"root": "data/demo/MELD.Raw"}})
    out = run(["dvc", "repro"], repo)
    assert "is read as a meld corpus" in out
    m = manifest.read(repo / "data" / "prepared")
    assert m.corpus == "meld" and m.labels[0] == "neutral"
    errors = (repo / "data" / "prepared" / "errors.csv").read_text()
    assert "missing file" in errors and "unreadable file" in errors
    assert json.loads((repo / "metrics" / "ambdsgdn.details.json").read_text())["corpus"] == "meld"
    assert not list((repo / "metrics").glob("iemocap*")) and not list((repo / "metrics").glob("meld*"))
    set_params(repo, {"demo": {"layout": "iemocap"}, "prepare": {"root": "data/demo/IEMOCAP_full_release"}})
    back = run(["dvc", "repro"], repo)
    for stage in ("demo", "prepare", "finetune", "extract@text", "extract@audio", "extract@visual", "train"):
        assert f"Stage '{stage}' is cached" in back, back   # restored by DVC's run-cache
    again = run(["dvc", "repro", "--force", "--single-item", "extract@text", "extract@audio",
                 "extract@visual"], repo)
    assert again.count(" 0 computed") == 3


def test_text_only_real_corpus_with_dvc_exp_run(repo):
    """A transcripts-only corpus: one -S for the corpus, one for the modalities; the other extract
    stages do no work and nothing of them reaches train/evaluate."""
    from tests.conftest import shared_path

    csv = shared_path("iemocap_text", "iemocap_text.csv")
    set_params(repo, {"train": {"epochs": 2, "warm_up_epochs": 1}})
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "scratch"], repo)
    out = run(["dvc", "exp", "run", "-S", f"prepare.root={csv}", "-S", "modalities=[text]"], repo)
    assert "is read as a csv corpus" in out
    assert "extract audio: not in modalities ['text']: nothing to do" in out
    assert "extract visual: not in modalities ['text']: nothing to do" in out
    for modality in ("audio", "visual"):
        assert [p.name for p in (repo / "data" / "features" / modality).iterdir()] == ["meta.json"]
    details = json.loads((repo / "metrics" / "ambdsgdn.details.json").read_text())
    assert details["modalities"] == ["text"] and set(details["features"]) == {"text"}
    assert details["counts"]["test"] > 1000 and details["corpus"] == "csv"
    assert "warning: modalities lists" not in out   # transcripts only, and the run asks for no more
    # dvc exp show, as the README shows it: the changed params and the scores, nothing else (its
    # width is then that of the values, e.g. the corpus path).
    command = make_exps_command()
    assert "--no-pager" in command
    table = run([*command, "--md"], repo)
    columns = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
    assert set(columns) <= {"Experiment", "test.wa_f1", "test.wa_acc", "test.macro_f1", "dev.wa_f1", "seeds",
                            "modalities", "prepare.root"}, columns
    assert {"modalities", "prepare.root", "test.wa_f1", "dev.wa_f1"} <= set(columns), columns


def test_prepare_cli_reports_bad_params(repo):
    set_params(repo, {"prepare": {"corpus": "friends"}})
    done = subprocess.run([sys.executable, "-m", "pipeline.prepare"], cwd=repo,
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "prepare: error: prepare.corpus: unknown corpus 'friends'" in done.stderr
