import json

import pytest

from pipeline.report import table


def metrics(**extra):
    stat = {"mean": 0.5, "sample_std": 0.01, "n": 2, "per_seed": [0.49, 0.51]}
    return {"test_wa_f1": stat, "test_wa_acc": {"mean": 0.6, "sample_std": 0.0, "n": 2}, "test_macro_f1": stat,
            "per_class": {"neu": {"f1": 0.7}, "sad": {"f1": 0.25}}, **extra}


def test_one_row_per_metrics_file(tmp_path):
    (tmp_path / "iemocap_diff.details.json").write_text(json.dumps(metrics(
        selected_epochs=[12, 30], epoch_s={"mean": 0.934}, seeds=[0, 1])))
    single = {"mean": 0.5, "sample_std": None, "n": 1, "per_seed": [0.5]}
    (tmp_path / "iemocap_logreg.details.json").write_text(json.dumps(
        {**metrics(selected_C=0.01, fit_s=2.71), "test_wa_f1": single}))
    text = table([tmp_path / "iemocap_diff.json", tmp_path / "iemocap_logreg.json"], "IEMOCAP", "dvc repro x")
    lines = text.splitlines()
    assert lines[0] == "### IEMOCAP"
    assert lines[4] == ("| iemocap_diff | 50.00 ± 1.00 | 60.00 ± 0.00 | 50.00 ± 1.00 | neu 70.0 sad 25.0 "
                        "| epochs 12, 30 | 0.93 | 2 |")
    assert lines[5].startswith("| iemocap_logreg | 50.00 | ") and "| C=0.01 | 2.7 (fit) | — |" in lines[5]
    assert lines[-1] == "Reproduce: `dvc repro x`"


def test_missing_or_foreign_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.details.json: details of .*absent.json not found"):
        table([tmp_path / "absent.json"])
    (tmp_path / "summary.details.json").write_text("{}")
    with pytest.raises(ValueError, match="summary.details.json: not an evaluate/baseline details file"):
        table([tmp_path / "summary.json"])


def test_a_folder_gives_every_metrics_file_grouped_by_features(tmp_path):
    for name in ("minilm_ft_none", "minilm_logreg", "minilm_ft_diff", "minilm_gat", "minilm_diff", "mpnet_diff"):
        (tmp_path / f"{name}.json").write_text("{}")
        extra = {"selected_C": 0.1, "fit_s": 1.0} if name.endswith("logreg") else {
            "selected_epochs": [1], "epoch_s": {"mean": 1.0}, "seeds": [0]}
        (tmp_path / f"{name}.details.json").write_text(json.dumps(metrics(**extra)))
    (tmp_path / "stray.json").write_text("{}")          # no details beside it: not a metrics file
    rows = [line.split(" | ")[0][2:] for line in table([tmp_path]).splitlines()[2:]]
    assert rows == ["minilm_diff", "minilm_gat", "minilm_logreg", "minilm_ft_diff", "minilm_ft_none", "mpnet_diff"]
    with pytest.raises(ValueError, match="no metrics files given"):
        table([tmp_path / "empty_dir"] if (tmp_path / "empty_dir").mkdir() is None else [])


def test_seconds_come_from_the_timings_beside_only_when_asked(tmp_path):
    """Seconds are measurements: the table a DVC stage writes leaves them out, so it is the same
    bytes on a rerun; --timings fills them from the untracked *.timings.json."""
    (tmp_path / "meld_diff.details.json").write_text(json.dumps(metrics(selected_epochs=[3], seeds=[0, 1])))
    (tmp_path / "meld_diff.timings.json").write_text(json.dumps({"epoch_s": {"mean": 2.5}}))
    plain = table([tmp_path / "meld_diff.json"]).splitlines()[2]
    assert plain.endswith("| epochs 3 | — | 2 |")
    assert table([tmp_path / "meld_diff.json"], timings=True).splitlines()[2].endswith("| epochs 3 | 2.50 | 2 |")
