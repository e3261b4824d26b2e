"""The prepare stage refuses now what a later stage would refuse after every extraction: a split
without labelled dialogues, a dialogue with more speakers than the model has rows for."""
from tests.conftest import REPO


def corpus(path, speakers_in_d0: int, splits=("train", "dev", "test")):
    rows = ["dialogue_id,turn,utterance_id,speaker,text,label,split"]
    for d, split in enumerate(splits):
        count = speakers_in_d0 if d == 0 else 2
        rows += [f"d{d},{t},d{d}_u{t},s{t % count},line {t},{['neu', 'ang'][t % 2]},{split}" for t in range(6)]
    path.write_text("\n".join(rows) + "\n")
    return path


def prepare(path, tmp_path, *sets: str) -> int:
    from pipeline import prepare as stage

    args = ["--params", str(REPO / "params.yaml"), "--set", f"prepare.root={path}", "--set", "modalities=[text]"]
    return stage.main([*args, *(a for s in sets for a in ("--set", s)), "--out", str(tmp_path / "out")])


def test_a_split_without_labelled_dialogues_is_refused_at_prepare(tmp_path, capsys):
    path = corpus(tmp_path / "c.csv", 2, splits=("train", "train", "test"))
    assert prepare(path, tmp_path) == 1
    err = capsys.readouterr().err
    assert "has no labelled dev dialogues (train selects on dev, evaluate scores test)" in err
    assert "a CSV's split column" in err and not (tmp_path / "out" / "manifest.csv").exists()


def test_a_dialogue_with_more_speakers_than_the_model_has_rows_is_refused_at_prepare(tmp_path, capsys):
    path = corpus(tmp_path / "c.csv", 5)
    assert prepare(path, tmp_path, "model.max_speakers=4") == 1
    err = capsys.readouterr().err
    assert "1 dialogue(s) have more speakers than model.max_speakers=4" in err and "d0 (train, 5 speakers)" in err
    assert prepare(path, tmp_path, "model.max_speakers=5") == 0
