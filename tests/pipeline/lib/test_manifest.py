from pathlib import Path

import pandas as pd
import pytest

from pipeline.lib import manifest
from pipeline.lib.manifest import Manifest, ManifestError, normalize_columns, validate

LABELS = ["neu", "ang"]


def table(**overrides) -> pd.DataFrame:
    rows = {
        "split": ["train", "train", "train", "test"],
        "dialogue_id": ["d1", "d1", "d1", "d2"],
        "turn": [0, 1, 2, 0],
        "utterance_id": ["u1", "u2", "u3", "u4"],
        "speaker": ["A", "B", "A", "A"],
        "label": ["neu", "ang", "neu", "ang"],
    }
    rows.update(overrides)
    return normalize_columns(pd.DataFrame(rows))


def test_valid_table_passes():
    validate(table(), LABELS)


@pytest.mark.parametrize("overrides, expected", [
    ({"utterance_id": ["u1", "u2", "u1", "u4"]}, "duplicate utterance id 'u1' at rows 1, 3"),
    ({"label": ["neu", "happy", "neu", "ang"]}, "row 2 (utterance u2): unknown label 'happy'"),
    ({"turn": [0, 1, 3, 0]}, "dialogue 'd1': turns must be 0..2 without gaps or repeats, found 0, 1, 3"),
    ({"turn": [0, 1, 1, 0]}, "found 0, 1, 1"),
    ({"dialogue_id": ["d1", "d1", "d1", ""]}, "row 4 (utterance u4): empty dialogue_id"),
    ({"split": ["train", "train", "train", "valid"]}, "row 4 (utterance u4): unknown split 'valid'"),
    ({"split": ["train", "dev", "train", "test"]}, "dialogue 'd1' spans several splits (dev, train)"),
    ({"speaker": ["A", "", "A", "A"]}, "row 2 (utterance u2): empty speaker"),
])
def test_validation_names_the_row(overrides, expected):
    with pytest.raises(ManifestError) as err:
        validate(table(**overrides), LABELS, source="x.csv")
    assert expected in str(err.value)
    assert str(err.value).startswith("x.csv: 1 problem(s)")


def test_csv_line_numbering():
    with pytest.raises(ManifestError, match=r"line 3 \(utterance u2\): unknown label"):
        validate(table(label=["neu", "joy", "neu", "ang"]), LABELS, first_row=2, row_word="line")


def test_long_problem_lists_are_cut():
    n = 30
    bad = normalize_columns(pd.DataFrame({
        "split": ["train"] * n, "dialogue_id": [f"d{i}" for i in range(n)], "turn": [0] * n,
        "utterance_id": [f"u{i}" for i in range(n)], "speaker": ["A"] * n, "label": ["joy"] * n}))
    with pytest.raises(ManifestError, match=r"30 problem\(s\)[\s\S]*\.\.\. and 20 more"):
        validate(bad, LABELS)


def test_write_read_round_trip(tmp_path):
    t = table(text=["a, \"quoted\"", "b", "", "é"], start_s=[0.0, 1.5, float("nan"), 2.0])
    m = Manifest(t, "csv", str(tmp_path), LABELS, {"errors": 0})
    summary = manifest.write(m, pd.DataFrame(columns=["split"]), tmp_path / "out")
    back = manifest.read(tmp_path / "out")
    pd.testing.assert_frame_equal(back.table, t)
    assert back.labels == LABELS and back.corpus == "csv" and back.extra_meta == {"errors": 0}
    assert summary["train"] == {"dialogues": 1, "utterances": 3, "labels": {"neu": 2, "ang": 1},
                                "speakers": 2, "distinct_speaker_names": 2, "with_text": 2,
                                "with_audio": 0, "with_video": 0, "errors": 0}
    assert back.media_path("") is None and back.media_path("a.wav") == tmp_path / "a.wav"


def test_relative_root_resolves_from_any_working_directory(tmp_path, monkeypatch):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.wav").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    manifest.write(Manifest(table(), "csv", "corpus", LABELS), pd.DataFrame(), Path("data/prep"))
    assert '"root": "../../corpus"' in (tmp_path / "data/prep" / manifest.META_FILE).read_text()
    monkeypatch.chdir("/")
    back = manifest.read(tmp_path / "data" / "prep")
    assert back.media_path("a.wav").read_bytes() == b"x"


def test_read_missing_manifest_names_the_path(tmp_path):
    with pytest.raises(ManifestError, match="no manifest here"):
        manifest.read(tmp_path)


def test_speaker_index_by_first_appearance():
    t = table(speaker=["B", "A", "B", "Z"], turn=[1, 0, 2, 0])
    assert manifest.speaker_index_by_appearance(t).tolist() == [1, 0, 1, 0]


def test_prepare_warns_when_a_required_modality_is_mostly_missing(tmp_path, capsys):
    from pipeline import prepare
    from pipeline.lib.manifest import coverage_warnings

    rows = ["dialogue_id,utterance_id,speaker,label,split,text,audio_path"]
    for split, n in (("train", 3), ("dev", 2), ("test", 2)):
        for d in range(n):
            for t in range(3):
                rows.append(f"{split}{d},{split}{d}_{t},{'AB'[t % 2]},{'xy'[t % 2]},{split},hello {t},")
    (tmp_path / "c.csv").write_text("\n".join(rows) + "\n")
    prepare.run({"corpus": "csv", "root": str(tmp_path / "c.csv"), "probe_media": False},
                tmp_path / "out", modalities=["text", "audio"])
    out = capsys.readouterr().out
    assert ("warning: modalities lists audio, but 21 of 21 utterances (100%) have no audio; for a run "
            "without it: dvc exp run -S 'modalities=[text]'") in out
    assert "lists text" not in out
    summary = {"train": {"utterances": 10, "with_text": 10, "with_audio": 5, "with_video": 4}}
    assert [w.split(",")[0] for w in coverage_warnings(summary, ["text", "audio", "visual"])] == [
        "warning: modalities lists visual"]      # 50% missing is not "more than half"


def test_relative_root_keeps_symlinks_so_clones_anywhere_write_the_same_bytes(tmp_path, monkeypatch):
    """A clone with ``../shared`` linked to the data writes the same root wherever the clone and
    the data lie (before: the link was resolved, and the root named the clone's own depth)."""
    data = tmp_path / "elsewhere" / "deep" / "data" / "corpus"
    data.mkdir(parents=True)
    (data / "a.wav").write_bytes(b"x")
    written = []
    for clone in (tmp_path / "c1", tmp_path / "x" / "y" / "c2"):
        (clone / "repo").mkdir(parents=True)
        (clone / "shared").symlink_to(data.parent)
        monkeypatch.chdir(clone / "repo")
        manifest.write(Manifest(table(), "csv", "../shared/corpus", LABELS), pd.DataFrame(),
                       Path("data/prep"))
        written.append((clone / "repo/data/prep" / manifest.META_FILE).read_bytes())
        monkeypatch.chdir("/")
        assert manifest.read(clone / "repo/data/prep").media_path("a.wav").read_bytes() == b"x"
    assert written[0] == written[1] and b'"root": "../../../shared/corpus"' in written[0]


def test_relative_root_after_a_symlink_and_dotdot_is_resolved(tmp_path, monkeypatch):
    """``link/..`` means the link target's parent to the filesystem but nothing to a lexical join:
    such a root is stored resolved, so the manifest still finds its media."""
    (tmp_path / "real" / "inner").mkdir(parents=True)
    (tmp_path / "real" / "corpus").mkdir()
    (tmp_path / "real" / "corpus" / "a.wav").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real" / "inner")
    monkeypatch.chdir(tmp_path)
    manifest.write(Manifest(table(), "csv", "link/../corpus", LABELS), pd.DataFrame(), Path("prep"))
    assert manifest.read(tmp_path / "prep").media_path("a.wav").read_bytes() == b"x"
