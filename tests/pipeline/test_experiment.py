"""The paper's experiments (pipeline.experiment, pipeline.lib.experiments): points, shared trainings,
test-time settings, results, tables and figures."""
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline import experiment
from pipeline.lib import experiments, protocols
from pipeline.lib.experiments import read_experiment
from tests.conftest import REPO
from tests.pipeline.test_train_evaluate import params, workdir  # noqa: F401  (the module's fixture)

PAPER = REPO / "benchmarks" / "paper"


def write(path, doc):
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_points_that_train_alike_share_one_training(workdir, tmp_path, monkeypatch):  # noqa: F811
    import pipeline.lib.experiments as lib

    trained = []
    real = lib.train_models

    def spy(point_params, *args, **kwargs):
        trained.append(point_params["model"]["window"])
        return real(point_params, *args, **kwargs)

    monkeypatch.setattr(lib, "train_models", spy)
    path = write(tmp_path / "exp.yaml", {
        "title": "noise", "figure": {"kind": "heatmap", "x": "eval.noise", "series": "model.window"},
        "points": {"clean": {"model.window": 2}, "noisy": {"model.window": 2, "eval.noise": 3.0},
                   "long": {"model.window": 2, "eval.dialogue_length": [4, 1000]},
                   "none": {"model.window": 2, "eval.dialogue_length": [999, 1000]},
                   "wide": {"model.window": 5}}})
    out = tmp_path / "results" / "exp"
    result = experiments.run_experiment(read_experiment(path), params(train={"epochs": 2}), workdir / "prepared",
                                        workdir / "features", out, seeds=[0, 1], log=lambda _: None)
    assert trained == [2, 5]                                  # one training per distinct training setting
    rows = {r["point"]: r for r in result["points"]}
    assert list(rows) == ["clean", "noisy", "long", "none", "wide"]
    clean, noisy = rows["clean"], rows["noisy"]
    assert clean["test_wa_f1"]["n"] == 2 and clean["selected_epochs"] == noisy["selected_epochs"]
    assert clean["dev_wa_f1"] == noisy["dev_wa_f1"]           # the same models ...
    assert clean["confusion"] != noisy["confusion"]           # ... scored on other features
    assert rows["none"]["test_dialogues"] == 0 and "test_wa_f1" not in rows["none"]
    assert 0 < rows["long"]["test_dialogues"] <= clean["test_dialogues"]
    assert np.sum(clean["confusion"]) == 2 * clean["test_utterances"]   # summed over the two seeds
    assert len([p for p in (out.parent / ".trained").iterdir() if p.is_dir()]) == 2   # one per training
    path_json = experiments.write_result(result, out)
    assert len([p for p in (out.parent / ".trained").iterdir() if p.is_dir()]) == 2   # kept
    experiment.render(path_json, label="unit", published=None)
    table = (out.parent / "exp.md").read_text()
    assert "| noisy | model.window=2, eval.noise=3.0 |" in table and "| none |" in table
    assert (out.parent / "exp.png").stat().st_size > 1000
    assert json.loads(path_json.read_text()) == json.loads(json.dumps(result))
    # render without arguments redraws with what the run recorded (the stage's label and command)
    path_json.write_text(json.dumps({**result, "presentation": {"label": "unit corpus", "published": None,
                                                                 "command": "make it again"}}))
    experiment.render(path_json)
    recorded = (out.parent / "exp.md").read_text()
    assert "unit corpus" in recorded and "make it again" in recorded
    experiment.render(path_json, label="other")
    assert "other" in (out.parent / "exp.md").read_text() and "unit corpus" not in (out.parent / "exp.md").read_text()


def test_a_killed_experiment_reuses_finished_trainings(workdir, tmp_path, monkeypatch):  # noqa: F811
    import pipeline.lib.experiments as lib

    path = write(tmp_path / "exp.yaml", {"points": {"a": {"model.window": 2}, "b": {"model.window": 3}}})
    out = tmp_path / "exp"
    calls = []
    real = lib.train_models

    def killed_at_second(point_params, *args, **kwargs):
        calls.append(point_params["model"]["window"])
        if point_params["model"]["window"] == 3:
            raise KeyboardInterrupt                           # the kill, during the second training
        return real(point_params, *args, **kwargs)

    monkeypatch.setattr(lib, "train_models", killed_at_second)
    run = (read_experiment(path), params(train={"epochs": 1}), workdir / "prepared", workdir / "features", out)
    with pytest.raises(KeyboardInterrupt):
        experiments.run_experiment(*run, seeds=[0], log=lambda _: None)
    monkeypatch.setattr(lib, "train_models", lambda *a, **k: (calls.append("again"), real(*a, **k))[1])
    first = experiments.run_experiment(*run, seeds=[0], log=lambda _: None)
    assert calls == [2, 3, "again"]                          # window 2 was not trained twice
    monkeypatch.setattr(lib, "train_models", real)
    experiments.write_result(first, out)
    elsewhere = (*run[:4], tmp_path / "other" / "exp")                # its own .trained: trains afresh
    fresh = experiments.run_experiment(*elsewhere, seeds=[0], log=lambda _: None)
    assert fresh["points"] == first["points"]                # resumed = uninterrupted (CPU determinism)
    # Another experiment beside it with one of the same configurations reuses that training ...
    monkeypatch.setattr(lib, "train_models", lambda *a, **k: (calls.append("b"), real(*a, **k))[1])
    other = write(tmp_path / "other.yaml", {"points": {"same_as_a": {"model.window": 2}}})
    experiments.run_experiment(read_experiment(other), *run[1:], seeds=[0], log=lambda _: None)
    assert calls == [2, 3, "again"]
    # ... unless the training code changed.
    monkeypatch.setattr(lib, "training_code_digest", lambda: "edited")
    experiments.run_experiment(read_experiment(other), *run[1:], seeds=[0], log=lambda _: None)
    assert calls == [2, 3, "again", "b"]


def test_noise_is_scaled_by_the_train_std_and_touches_present_test_vectors_only(workdir):  # noqa: F811
    from pipeline.lib.inputs import load_inputs

    inputs = load_inputs(params(), workdir / "prepared", workdir / "features")
    items = experiments.test_dialogues(inputs, {})
    assert experiments.noisy_matrices(inputs, items, 0.0, seed=0) is inputs.matrices
    noisy = experiments.noisy_matrices(inputs, items, 0.5, seed=0)
    again = experiments.noisy_matrices(inputs, items, 0.5, seed=0)
    test_rows = np.concatenate([d.rows for d in items])
    table = inputs.manifest.table
    for m, matrix in inputs.matrices.items():
        np.testing.assert_array_equal(noisy[m], again[m])               # reproducible
        changed = np.flatnonzero((noisy[m] != matrix).any(1))
        assert set(changed) <= set(test_rows) and set(changed) == set(test_rows[inputs.present[m][test_rows]])
        train = (table["split"] == "train").to_numpy() & inputs.present[m]
        added = (noisy[m] - matrix)[changed]
        assert added.std() == pytest.approx(0.5 * matrix[train].std(), rel=0.1)
    assert not np.array_equal(experiments.noisy_matrices(inputs, items, 0.5, seed=1)["text"], noisy["text"])


@pytest.mark.parametrize("points, message", [
    ({"a": {"eval.nois": 0.1}}, "point 'a': unknown evaluation setting 'eval.nois'"),
    ({"a": {"eval.noise": -1}}, "eval.noise=-1: expected a number >= 0"),
    ({"a": {"eval.dialogue_length": [5, 2]}}, r"eval.dialogue_length=\[5, 2\]: expected \[lo, hi\]"),
    ({"a": ["model.window", 2]}, "point 'a': expected a mapping"),
    ({}, "expected `points:`"),
])
def test_a_bad_experiment_file_is_named(tmp_path, points, message):
    path = write(tmp_path / "bad.yaml", {"points": points})
    with pytest.raises(ValueError, match=message):
        read_experiment(path)


def test_a_bad_point_is_refused_before_any_training(workdir, tmp_path, monkeypatch):  # noqa: F811
    import pipeline.lib.experiments as lib

    monkeypatch.setattr(lib, "train_models", lambda *a, **k: pytest.fail("trained before checking every point"))
    path = write(tmp_path / "exp.yaml", {"points": {"ok": {}, "typo": {"model.windw": 3}}})
    with pytest.raises(ValueError, match="model.windw: unknown key"):
        experiments.run_experiment(read_experiment(path), params(), workdir / "prepared", workdir / "features",
                                   tmp_path / "exp")




@pytest.mark.parametrize("path", sorted((PAPER / "experiments").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_paper_experiment_is_valid_against_the_params_it_runs_with(path):
    """Each experiment file's points pass the params schema on the demo's params.yaml (and the text
    recipes for the text experiments), and its published figures name its own points."""
    from config.params import load_params
    from extractors import params_extensions

    definition = read_experiment(path)
    settings = yaml.safe_load((PAPER / "params.yaml").read_text())
    bases = []
    if path.stem in settings["demo_experiments"]:
        bases.append(REPO / "params.yaml")
    if path.stem in settings["text_experiments"]:
        bases += [REPO / "benchmarks" / "text_only" / "recipes" / f"{c}_minilm_ft.yaml"
                  for c in settings["text_corpora"]]
    assert bases, f"{path.stem} runs nowhere (benchmarks/paper/params.yaml)"
    for base in bases:
        base_params = load_params(base, [], params_extensions(), experiments.SECTIONS)
        for name, point in definition.points.items():
            trained, _ = experiments.split_settings(point)
            experiments.with_settings(base_params, trained, [0])
    for corpus, figures in definition.published.items():
        assert corpus in ("iemocap", "meld") and set(figures) <= set(definition.points), path
    figure = definition.figure
    for axis in ("x", "y", "series"):
        if axis in figure:
            assert all(figure[axis] in p for p in definition.points.values()), (path, axis)


def test_leave_one_session_out_folds_hold_out_each_session(workdir, tmp_path):  # noqa: F811
    from pipeline.lib import manifest

    m = manifest.read(workdir / "prepared")
    sessions = sorted({int(d[3:5]) for d in m.table["dialogue_id"]})
    folds = protocols.session_folds(m)
    assert [f for f, _ in folds] == [f"session_{s}" for s in sessions]
    for fold, fm in folds:
        held = int(fold.removeprefix("session_"))
        by_split = fm.table.groupby("split")["dialogue_id"].agg(set)
        assert {int(d[3:5]) for d in by_split["test"]} == {held}
        assert all(int(d[3:5]) != held for d in by_split["train"] | by_split["dev"])
        assert by_split["dev"] and not by_split["dev"] & by_split["train"]
        assert len(fm.table) == len(m.table) and (fm.table["utterance_id"] == m.table["utterance_id"]).all()
    path = write(tmp_path / "exp.yaml", {"points": {"a": {}, "narrow": {"model.window": 1}}})
    result = experiments.run_experiment(read_experiment(path), params(train={"epochs": 1}), workdir / "prepared",
                                        workdir / "features", tmp_path / "exp", seeds=[0], log=lambda _: None,
                                        protocol="loso")
    row = result["points"][0]
    assert result["protocol"] == "loso" and list(row["folds"]) == [f for f, _ in folds]
    per_fold = [r["test_wa_f1"]["mean"] for r in row["folds"].values()]
    assert row["test_wa_f1"]["n"] == len(folds) and row["test_wa_f1"]["mean"] == pytest.approx(np.mean(per_fold))
    assert row["test_utterances"] == len(m.table)           # every utterance is tested once, in its session's fold
    renamed = m.table.assign(dialogue_id="dia" + m.table["dialogue_id"])
    with pytest.raises(ValueError, match="dialogue 'diaSes.*' names no IEMOCAP session"):
        protocols.session_folds(manifest.Manifest(renamed, m.corpus, m.root, m.labels))


def test_cross_corpus_trains_on_one_corpus_and_tests_on_the_other_on_shared_classes(workdir, tmp_path):  # noqa: F811
    """The second corpus: the same utterances (so the same feature caches) with MELD's spellings and
    without "hap": the shared classes are IEMOCAP's neu/sad/ang under MELD's names (not joy)."""
    from pipeline.lib import manifest

    m = manifest.read(workdir / "prepared")
    meld_names = {"neu": "neutral", "sad": "sadness", "ang": "anger", "exc": "surprise", "fru": "disgust", "hap": "fear"}
    other = manifest.Manifest(m.table.assign(label=[meld_names.get(x, x) for x in m.table["label"]]), "meld",
                              m.root, ["neutral", "surprise", "fear", "sadness", "disgust", "anger"])
    manifest.write(other, pd.DataFrame(), tmp_path / "meld" / "prepared")
    shared = protocols.shared_classes(m, other)
    assert shared == ["neutral", "sadness", "anger"]                 # hap has no counterpart here
    relabelled = protocols.relabelled(m, shared)
    assert relabelled.labels == shared and relabelled.extra_meta["context_labels"] == ["hap", "exc", "fru"]
    kept = relabelled.table["label"].isin(shared)
    assert kept.sum() == m.table["label"].isin(["neu", "sad", "ang"]).sum() and len(relabelled.table) == len(m.table)
    path = write(tmp_path / "exp.yaml", {"points": {"full": {}}})
    result = experiments.run_experiment(read_experiment(path), params(train={"epochs": 1}), workdir / "prepared",
                                        workdir / "features", tmp_path / "exp", seeds=[0], log=lambda _: None,
                                        protocol="cross", test_corpus=(tmp_path / "meld" / "prepared",
                                                                       workdir / "features"))
    assert result["protocol"] == "cross: trained on iemocap, tested on meld" and result["labels"] == shared
    row = result["points"][0]
    assert np.asarray(row["confusion"]).shape == (3, 3)
    tested = manifest.read(tmp_path / "exp.work" / "test" / "prepared").table
    assert np.sum(row["confusion"]) == tested.query("split == 'test'")["label"].isin(shared).sum()
    alone = manifest.Manifest(m.table, "x", m.root, ["neu", "xyz"])
    with pytest.raises(ValueError, match="share fewer than two classes"):
        protocols.shared_classes(alone, other)
    with pytest.raises(ValueError, match="name the test corpus"):
        experiments.run_experiment(read_experiment(path), params(), workdir / "prepared", workdir / "features",
                                   tmp_path / "exp2", protocol="cross")


def test_cross_corpus_refuses_features_of_another_extractor():
    from pipeline.lib.inputs import Inputs

    def inputs(dim):
        return Inputs(None, {}, {}, {"text": {"extractor": "transformers", "params": {"model": "m"}, "dim": dim}})

    protocols.same_features(inputs(384), inputs(384))
    with pytest.raises(ValueError, match="the text features differ in dim"):
        protocols.same_features(inputs(384), inputs(768))


@pytest.mark.parametrize("figure", [{"kind": "bars"}, {"kind": "line", "x": "model.window"},
                                    {"kind": "line", "x": "model.window", "series": "model.name"},
                                    {"kind": "heatmap", "x": "model.window", "y": "train.p_exe"},
                                    {"kind": "heatmap", "x": "model.window", "series": "model.name"},
                                    {"kind": "confusion"}], ids=lambda f: "-".join(map(str, f.values())))
def test_every_figure_kind_draws_and_the_table_shows_the_paper_beside_ours(tmp_path, figure):
    from pipeline.lib.experiment_report import figure as draw
    from pipeline.lib.experiment_report import markdown

    def stat(mean):
        return {"mean": mean, "sample_std": 0.01, "n": 3, "per_seed": [mean] * 3}

    points = [{"point": f"w{w}-{m}-{p}", "settings": {"model.window": w, "model.name": m, "train.p_exe": p},
               "test_wa_f1": stat(0.5 + w / 100), "test_wa_acc": stat(0.5), "dev_wa_f1": stat(0.4),
               "selected_epochs": [1, 2, 3], "test_dialogues": 3, "confusion": [[3, 1], [0, 2]]}
              for w in (1, 5) for m in ("ambdsgdn", "ar_iigcn") for p in (0.3, 0.5)]
    points.append({"point": "empty", "settings": {"model.window": 9, "model.name": "ambdsgdn", "train.p_exe": 0.3},
                   "test_dialogues": 0, "note": "no test dialogue matches eval.dialogue_length"})
    result = {"experiment": "x", "title": "X", "paper": "Table 0", "corpus": "iemocap", "labels": ["a", "b"],
              "seeds": [0, 1, 2], "selection": "dev", "figure": figure, "protocol": "standard",
              "published": {"iemocap": {"w1-ambdsgdn-0.3": {"wa_f1": 61.0, "wa_acc": 62.0}}}, "points": points}
    draw(result, tmp_path / "x.png", published="iemocap")
    assert (tmp_path / "x.png").stat().st_size > 5000
    table = markdown(result, published="iemocap", command="dvc repro demo@x")
    assert "| w1-ambdsgdn-0.3 | model.window=1, model.name=ambdsgdn, train.p_exe=0.3 | 51.00 ± 1.00 |" in table
    assert "| 61.00 | 62.00 |" in table and "| empty |" in table and "Reproduce: `dvc repro demo@x`" in table
    assert "paper IEMOCAP" not in markdown(result, published="meld")   # only the corpus it names


def test_a_long_title_is_wrapped_inside_the_figure(tmp_path):
    """The title band's outermost pixel columns stay blank: a long corpus label is wrapped, not cut
    off at both edges (as the first IEMOCAP LOSO figure was)."""
    import matplotlib.image

    from pipeline.lib.experiment_report import figure as draw

    stat = {"mean": 0.5, "sample_std": 0.01, "n": 3, "per_seed": [0.5] * 3}
    points = [{"point": p, "settings": {"model.graph": p}, "test_wa_f1": stat, "test_wa_acc": stat,
               "dev_wa_f1": stat, "selected_epochs": [1, 2, 3], "test_dialogues": 3} for p in ("diff", "gat")]
    result = {"experiment": "x", "title": "Table 5: graph ablations (modality dropout on)", "paper": "Table 5",
              "corpus": "iemocap", "labels": ["a", "b"], "seeds": [0, 1, 2], "selection": "dev",
              "figure": {"kind": "bars"}, "protocol": "loso", "published": {}, "points": points}
    label = "iemocap transcripts, text only (all-MiniLM-L6-v2 frozen), leave-one-session-out"
    draw(result, tmp_path / "x.png", corpus_label=label)
    pixels = matplotlib.image.imread(tmp_path / "x.png")[..., :3]
    title_band = pixels[: pixels.shape[0] // 8]
    assert title_band.min() < 0.5                                  # the title is drawn there
    assert title_band[:, :4].min() > 0.99 and title_band[:, -4:].min() > 0.99
