"""Released feature files: every layout read as the public dataloaders read it, nothing in a file
ever run, each kind of damage named with its dialogue and item, and our writer read back."""
import os
import pickle

import numpy as np
import pytest

from extractors.feature_pickles import (
    EXPORT_LAYOUTS,
    LAYOUTS,
    FeatureFileError,
    read_feature_file,
    write_feature_file,
)
from tests import released

COMBINATIONS = [(layout, corpus) for layout, corpora in LAYOUTS.items() for corpus in corpora
                if (layout, corpus) != ("dialoguegcn", "iemocap")]   # the same 9-tuple as mmgcn's


@pytest.mark.parametrize("layout, corpus", COMBINATIONS)
def test_every_layout_is_read_as_its_dataloader_reads_it(tmp_path, layout, corpus):
    built = released.build(corpus)
    ff = read_feature_file(released.write(tmp_path / "f.pkl", layout, corpus))
    assert (ff.layout, ff.corpus) == (layout, corpus)
    train = built["train"] + ([] if layout == "cosmic" else built["valid"])
    assert ff.splits["train"] == [str(d) for d in train] and ff.splits["test"] == [str(d) for d in built["test"]]
    assert ff.splits.get("valid", []) == ([str(d) for d in built["valid"]] if layout == "cosmic" else [])
    assert ff.int_ids == (corpus == "meld")
    items = built["items"]
    for dia in train + built["test"]:
        key = str(dia)
        assert ff.labels[key] == items["labels"][dia] and ff.sentences[key] == items["sentences"][dia]
        expected = ([("M", "F").index(s) for s in items["speakers"][dia]] if corpus == "iemocap"
                    else [int(np.argmax(s)) for s in items["speakers"][dia]])
        assert ff.speakers[key] == expected
        text = "roberta1" if layout == "cosmic" else "videoText"
        np.testing.assert_array_equal(ff.entry(text)[key], np.stack(items["text"][dia]))
        if "videoAudio" in ff.vectors:
            np.testing.assert_array_equal(ff.entry("videoAudio")[key], np.stack(items["audio"][dia]))
    if layout in ("amb_dsgdn", "cosmic"):
        mean = np.mean([np.stack(items[k][train[0]]) for k in ("text", "r2", "r3", "r4")], axis=0)
        np.testing.assert_allclose(ff.entry("roberta_mean")[str(train[0])], mean, atol=1e-6)
        np.testing.assert_array_equal(ff.entry("roberta1")[str(train[0])], ff.entry("videoText" if layout ==
                                      "amb_dsgdn" else "roberta1")[str(train[0])])
    with pytest.raises(FeatureFileError, match="entry 'videoFaces': not in this"):
        ff.entry("videoFaces")


class RunsACommand:
    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_payload_that_would_run_a_command_is_refused_and_nothing_runs(tmp_path):
    payload = RunsACommand()
    payload.marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps((payload,), protocol=2))
    with pytest.raises(FeatureFileError, match=r"evil.pkl: refused to load posix.system"):
        read_feature_file(path)
    assert not (tmp_path / "ran").exists()


class Python2Arrays(pickle.Pickler):
    """Arrays reduced as numpy did under Python 2: the raw buffer a (latin1) str, names of
    Python 2's modules (protocol 2 maps builtins to __builtin__)."""

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            from numpy._core.multiarray import _reconstruct
            state = (1, obj.shape, obj.dtype, False, obj.tobytes().decode("latin1"))
            return _reconstruct, (np.ndarray, (0,), "b"), state   # str, as Python 2 wrote it
        return NotImplemented


def test_a_python_2_style_latin1_pickle_loads(tmp_path):
    built = released.build("iemocap")
    items = released.as_tuple(built, "mmgcn", "iemocap")
    path = tmp_path / "py2.pkl"
    with open(path, "wb") as fh:
        Python2Arrays(fh, protocol=2, fix_imports=True).dump(items)
    assert b"_codecs" not in path.read_bytes()      # the buffers travel as text, as in Python 2
    ff = read_feature_file(path)
    dia = built["train"][0]
    np.testing.assert_array_equal(ff.entry("videoAudio")[dia], np.stack(built["items"]["audio"][dia]))


def damaged(tmp_path, change) -> str:
    built = released.build("iemocap")
    items = list(released.as_tuple(built, "mmgcn", "iemocap"))
    change(items, built)
    path = tmp_path / "damaged.pkl"
    path.write_bytes(pickle.dumps(tuple(items), protocol=2))
    with pytest.raises(FeatureFileError) as info:
        read_feature_file(path)
    return str(info.value)


def test_each_kind_of_damage_is_named_with_its_dialogue_and_item(tmp_path):
    first = released.build("iemocap")["train"][0]

    def missing(items, built):
        del items[4][first]
    assert f"dialogue {first}: no entry in videoAudio" in damaged(tmp_path, missing)

    def shorter(items, built):
        items[5][first] = items[5][first][:-1]
    assert f"dialogue {first}: videoVisual has" in damaged(tmp_path, shorter)

    def bad_label(items, built):
        items[2][first] = [*items[2][first][:-1], 9]
    message = damaged(tmp_path, bad_label)
    assert f"dialogue {first}: videoLabels[" in message and "outside the label map 0..5" in message

    def nan(items, built):
        items[3][first] = [np.full(16, np.nan, np.float32), *items[3][first][1:]]
    assert f"dialogue {first}: videoText[0] holds NaN" in damaged(tmp_path, nan)

    def other_dim(items, built):
        second = built["train"][1]
        items[4][second] = [np.zeros(13, np.float32) for _ in items[4][second]]
    assert "videoAudio vectors are 13-d, earlier dialogues' 12-d" in damaged(tmp_path, other_dim)

    second = released.build("iemocap")["train"][1]

    def speaker(items, built):          # not the first dialogue: the layout is still recognised
        items[1][second] = ["X", *items[1][second][1:]]
    assert f"dialogue {second}: videoSpeakers[0] = 'X': expected 'M' or 'F'" in damaged(tmp_path, speaker)

    def truncated_tuple(items, built):
        del items[-1]
    assert "8-item tuple fits no known layout" in damaged(tmp_path, truncated_tuple)


def test_what_is_not_a_regular_file_is_refused_without_blocking(tmp_path):
    with pytest.raises(FeatureFileError, match="the feature file is a directory, not a file"):
        read_feature_file(tmp_path)
    os.mkfifo(tmp_path / "pipe.pkl")
    with pytest.raises(FeatureFileError, match="pipe.pkl: the feature file is a named pipe, not a file"):
        read_feature_file(tmp_path / "pipe.pkl")
    with pytest.raises(FeatureFileError, match="absent.pkl: the feature file does not exist"):
        read_feature_file(tmp_path / "absent.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(FeatureFileError, match="junk.pkl: not a readable pickle"):
        read_feature_file(tmp_path / "junk.pkl")


@pytest.mark.parametrize("layout", EXPORT_LAYOUTS)
@pytest.mark.parametrize("corpus", ["iemocap", "meld"])
def test_what_the_writer_writes_reads_back_the_same(tmp_path, layout, corpus):
    source = "amb_dsgdn" if layout != "cosmic" else "cosmic"
    ff = read_feature_file(released.write(tmp_path / "in.pkl", source, corpus))
    if layout == "mmgcn":
        ff.vectors = {k: v for k, v in ff.vectors.items() if k in ("videoText", "videoAudio", "videoVisual")}
    write_feature_file(ff, tmp_path / "out.pkl", layout)
    back = read_feature_file(tmp_path / "out.pkl")
    assert (back.layout, back.corpus, back.int_ids) == (layout, corpus, ff.int_ids)
    assert back.splits == ff.splits and back.labels == ff.labels and back.speakers == ff.speakers
    assert back.sentences == ff.sentences
    for name in back.vectors:
        assert all(np.array_equal(back.vectors[name][d], ff.vectors[name][d]) for d in ff.dialogues)
    loaded = pickle.load(open(tmp_path / "out.pkl", "rb"), encoding="latin1")   # as the dataloaders do
    assert len(loaded) == len(LAYOUTS[layout][corpus])
