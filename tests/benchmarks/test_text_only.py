"""The text-only real-data benchmark (benchmarks/text_only/dvc.yaml) on slices of the real CSVs."""
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.cli import TRACE_ENV
from tests.conftest import copy_repo, run, shared_path, untracked_imports

pytestmark = pytest.mark.slow
BENCH = Path("benchmarks/text_only")
FEATURES = ("minilm", "minilm_ft")     # the feature sets of benchmarks/text_only/params.yaml
METRIC_KEYS = {"test_wa_f1", "test_wa_acc", "test_macro_f1", "per_class", "counts", "dev_wa_f1",
               "features", "train_dialogues"}


def meld_slice(dest: Path, per_split: dict[str, int]) -> Path:
    """The first dialogues of each official MELD CSV (same columns and values), in the MELD.Raw layout."""
    source = shared_path("meld", "MELD.Raw")
    dest.mkdir(parents=True)
    for split, n in per_split.items():
        name = f"{split}_sent_emo.csv"
        table = pd.read_csv(source / name, dtype=str, keep_default_na=False)
        keep = table["Dialogue_ID"].isin(table["Dialogue_ID"].unique()[:n])
        table[keep].to_csv(dest / name, index=False)
    return dest


def iemocap_slice(dest: Path, per_split: dict[str, int]) -> Path:
    table = pd.read_csv(shared_path("iemocap_text", "iemocap_text.csv"), dtype=str, keep_default_na=False)
    parts = [table[table["dialogue_id"].isin(table.loc[table.split == s, "dialogue_id"].unique()[:n])]
             for s, n in per_split.items()]
    pd.concat(parts).to_csv(dest, index=False)
    return dest


def edit_yaml(path: Path, edit) -> None:
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def benchmark_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    slices = {"meld": meld_slice(tmp / "MELD.Raw", {"train": 6, "dev": 2, "test": 3}),
              "iemocap": iemocap_slice(tmp / "iemocap_text.csv", {"train": 4, "dev": 2, "test": 2})}
    repo = copy_repo(tmp / "repo", stale=[str(BENCH / "dvc.lock")])

    def small(params):
        params["model"].update(d_hidden=32, encoder_heads=2)
        params["train"].update(seeds=[0, 1], epochs=2)
        params["baseline"].update(Cs=[0.1, 1.0])
        if "finetune" in params:
            params["finetune"].update(epochs=1, evals_per_epoch=1)
            if params["finetune"].get("crossfit_folds", 0) > 1:
                params["finetune"]["crossfit_folds"] = 2

    for corpus in slices:
        for features in FEATURES:
            edit_yaml(repo / BENCH / "recipes" / f"{corpus}_{features}.yaml", small)
    edit_yaml(repo / BENCH / "params.yaml",
              lambda p: [p["corpora"][c].update(root=str(path)) for c, path in slices.items()])
    import os

    os.environ[TRACE_ENV] = str(tmp / "imports")
    try:
        out = run(["dvc", "repro"], repo / BENCH)      # the benchmark is its own DVC project
    finally:
        del os.environ[TRACE_ENV]
    return repo, slices, out


def test_each_corpus_gets_five_rows_per_feature_set(benchmark_run):
    repo, slices, out = benchmark_run
    for corpus in slices:
        assert f"Running stage 'report@{corpus}'" in out
        table = (repo / BENCH / f"results_{corpus}.md").read_text()
        rows = [line.split(" | ")[0][2:] for line in table.splitlines()[4:] if line.startswith("| ")]
        assert rows == [f"{f}_{v}" for f in FEATURES for v in ("diff", "gat", "none", "ar-iigcn", "logreg")]
        assert f"cd benchmarks/text_only && dvc repro report@{corpus}" in table
        for features in FEATURES:
            metrics_dir = repo / BENCH / "metrics" / corpus
            for variant in ("diff", "gat", "none", "ar-iigcn"):
                metrics = json.loads((metrics_dir / f"{features}_{variant}.details.json").read_text())
                headline = json.loads((metrics_dir / f"{features}_{variant}.json").read_text())
                assert headline["test"]["wa_f1"] == round(metrics["test_wa_f1"]["mean"], 6)
                assert METRIC_KEYS | {"selected_epochs", "seeds"} <= set(metrics) and "epoch_s" not in metrics
                timings = json.loads((metrics_dir / f"{features}_{variant}.timings.json").read_text())
                assert timings["epoch_s"]["n"] == 2 and timings["epoch_s"]["mean"] > 0   # beside, untracked
                assert metrics["seeds"] == [0, 1] and len(metrics["test_wa_f1"]["per_seed"]) == 2
                assert 0 <= metrics["test_wa_f1"]["mean"] <= 1
                assert metrics["features"]["text"]["dim"] == 384
                tuned = metrics["features"]["text"]["identity"]["finetune"]
                assert (tuned is None) == (features == "minilm")
            logreg = json.loads((metrics_dir / f"{features}_logreg.details.json").read_text())
            assert METRIC_KEYS | {"selected_C"} <= set(logreg) and logreg["selected_C"] in (0.1, 1.0)
    # Every project file a stage imported is one of its DVC deps (or inside one): no drift.
    assert untracked_imports(repo / BENCH, repo, repo.parent / "imports") == {}
    # The whole benchmark is up to date after one run (nothing left stale).
    assert json.loads(run(["dvc", "status", "--json"], repo / BENCH)) == {}
    # ... and the root project's view never lists its stages (the root pipeline has not run here).
    root_view = json.loads(run(["dvc", "status", "--json"], repo))
    assert "demo" in root_view and not any("benchmarks" in stage or "@meld" in stage for stage in root_view)


def test_no_dev_or_test_dialogue_reaches_training(benchmark_run):
    repo, slices, _ = benchmark_run
    tables = {corpus: split_tables(corpus, source) for corpus, source in slices.items()}
    splits = {c: {s: set(t["dialogue_id"]) for s, t in split.items()} for c, split in tables.items()}
    sizes = {c: {s: len(t) for s, t in split.items()} for c, split in tables.items()}
    for corpus, ids in splits.items():
        for features in FEATURES:
            for variant in ("diff", "gat", "none", "ar_iigcn"):
                for seed in (0, 1):
                    path = (repo / BENCH / "data" / corpus / features / variant / "checkpoints" / f"seed_{seed}"
                            / "provenance.json")
                    trained = set(json.loads(path.read_text())["train_dialogues"])
                    config = json.loads((path.parent / "config.json").read_text())
                    assert config["model"] == ("ar_iigcn" if variant == "ar_iigcn" else "ambdsgdn")
                    assert trained == ids["train"], (corpus, features, variant, seed)
                    assert not trained & (ids["dev"] | ids["test"])
            logreg = json.loads((repo / BENCH / "metrics" / corpus / f"{features}_logreg.details.json").read_text())
            assert logreg["train_dialogues"] == len(ids["train"])
            assert logreg["counts"] == sizes[corpus]
            assert logreg["train_utterances"] == sizes[corpus]["train"]
        # The sweeps behind the recipes ran on dev, one point per grid entry.
        for features in FEATURES:
            swept = json.loads((repo / BENCH / "sweeps" / f"{corpus}_{features}.json").read_text())
            assert len(swept["points"]) >= 2 and swept["selected"]["point"] in {p["point"] for p in swept["points"]}
        # The fine-tuning saw train dialogues only, too.
        tuned = json.loads((repo / BENCH / "data" / corpus / "finetuned" / "minilm" / "finetune.json").read_text())
        assert set(tuned["train_dialogues"]) <= ids["train"] and tuned["corpus"] == corpus
        crossfit = tuned.get("crossfit")    # out-of-fold train features: no fold saw its own dialogues
        for fold in range(crossfit["folds"] if crossfit else 0):
            fold_run = json.loads((repo / BENCH / "data" / corpus / "finetuned" / "minilm" / "crossfit"
                                   / f"fold_{fold}" / "finetune.json").read_text())
            mine = {d for d, f in crossfit["fold_of"].items() if f == fold}
            assert mine and set(fold_run["train_dialogues"]) == ids["train"] - mine


def split_tables(corpus: str, source: Path) -> dict[str, pd.DataFrame]:
    """A corpus' train/dev/test tables (MELD.Raw folder or IEMOCAP CSV), dialogue ids as the manifest
    names them."""
    if corpus == "meld":
        tables = {s: pd.read_csv(source / f"{s}_sent_emo.csv") for s in ("train", "dev", "test")}
        return {s: t.assign(dialogue_id=[f"{s}_dia{d}" for d in t["Dialogue_ID"]]) for s, t in tables.items()}
    table = pd.read_csv(source, dtype=str, keep_default_na=False)
    return {s: table[table["split"] == s] for s in ("train", "dev", "test")}


@pytest.mark.parametrize("corpus", ["meld", "iemocap"])
def test_the_committed_mpnet_fine_tuned_rows_saw_the_train_split_only(corpus):
    """mpnet_run/ (the README's mpnet rows, from a second clone): the fine-tuned encoder, each cross-fitting fold
    and every model on its features trained on the corpus' train dialogues only, with the committed
    recipe's fine-tuning params."""
    from tests.conftest import REPO

    source = shared_path("meld", "MELD.Raw") if corpus == "meld" else shared_path("iemocap_text", "iemocap_text.csv")
    tables = split_tables(corpus, source)
    train = set(tables["train"]["dialogue_id"])
    run_dir = REPO / BENCH / "mpnet_run"
    tuned_dir = run_dir / "finetune" / corpus
    tuned = json.loads((tuned_dir / "finetune.json").read_text())
    assert tuned["corpus"] == corpus and set(tuned["train_dialogues"]) == train
    recipe = yaml.safe_load((REPO / BENCH / "recipes" / f"{corpus}_mpnet_ft.yaml").read_text())
    chosen = {k: v for k, v in recipe["finetune"].items() if k not in ("enabled", "crossfit_folds")}
    assert chosen == {k: tuned["params"][k] for k in chosen}
    crossfit = tuned.get("crossfit")
    assert (crossfit or {}).get("folds", 0) == recipe["finetune"].get("crossfit_folds", 0)
    for fold in range(crossfit["folds"] if crossfit else 0):
        fold_run = json.loads((tuned_dir / "crossfit" / f"fold_{fold}" / "finetune.json").read_text())
        mine = {d for d, f in crossfit["fold_of"].items() if f == fold}
        assert mine and set(fold_run["train_dialogues"]) == train - mine, fold
        assert fold_run["dev_utterances"] == tuned["dev_utterances"] and fold_run["params"] == tuned["params"]
    for run_name in ("diff", "gat", "none", "logreg"):
        details = json.loads((run_dir / "metrics" / corpus / f"mpnet_ft_{run_name}.details.json").read_text())
        identity = details["features"]["text"]["identity"]
        assert identity["finetune"]["split_sha256"] == tuned["split_sha256"], run_name
        assert identity["finetune"]["selected"] == tuned["selected"], run_name
        assert details["train_dialogues"] == len(train), run_name
        assert details["counts"] == {s: len(t) for s, t in tables.items()}, run_name
