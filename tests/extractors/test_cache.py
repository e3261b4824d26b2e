import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from extractors.base import Extractor, UtteranceFailure
from extractors.cache import CacheError, read_features, write_unused
from extractors.runner import ExtractionError, extract
from extractors.store import FeatureStore
from pipeline.lib import manifest
from tests.conftest import REPO


class Fake(Extractor):
    """Deterministic toy audio extractor: vector from the utterance id; scripted failures/NaNs."""

    name, modality, defaults = "fake", "audio", {"scale": 1.0, "batch_size": 4}
    fail: set[str] = set()
    nan: set[str] = set()
    calls: list[str] = []

    @property
    def dim(self):
        return 3

    def identity(self):
        return {"extractor": self.name, "scale": self.params["scale"]}

    def input_key(self, row, media_path, digest):
        return f"{row['utterance_id']}|{row['audio_path']}"   # what this toy reads

    def load(self, row, media_path):
        if row["utterance_id"] in self.fail:
            raise UtteranceFailure("unreadable audio x.wav: broken")
        return row["utterance_id"]

    def forward(self, inputs):
        Fake.calls += inputs
        out = np.array([[int(u[1]) * 10 + int(u[-1]), sum(map(ord, u)) % 97, 1.0] for u in inputs], np.float32)
        out[[i for i, u in enumerate(inputs) if u in self.nan]] = np.nan
        return out * self.params["scale"]


@pytest.fixture
def table():
    ids = [f"d{d}_u{u}" for d in range(3) for u in range(5)]
    return pd.DataFrame({"utterance_id": ids, "audio_path": "", "audio_start_s": np.nan,
                         "audio_end_s": np.nan, "text": ids, "video_side": ""})


def run(table, out, **kw):
    e = Fake(**kw.pop("params", {}))
    store = kw.pop("store", None) or FeatureStore(f"{out}.store")
    return extract(table, lambda p: None, e, out, params=dict(e.params), store=store, chunk_size=4,
                   progress=False, **kw)


def test_reuse_switch_back_and_invalidation(table, tmp_path, capsys):
    out = tmp_path / "features"
    Fake.calls = []
    meta = run(table, out)
    assert meta["n_ok"] == 15 and meta["reused"] == 0 and len(Fake.calls) == 15
    f = read_features(out, table["utterance_id"].tolist(), "fake", {"scale": 1.0, "batch_size": 4})
    assert f.dim == 3 and f.present.all() and f.meta["constant_dims"] == {"count": 1, "first": [2]}
    Fake.calls = []
    assert run(table, out)["reused"] == 15 and Fake.calls == []
    # Same ids, changed input (e.g. a regenerated corpus): only those are recomputed.
    changed = table.assign(audio_path=np.where(table.index < 2, "new.wav", ""))
    assert run(changed, out)["reused"] == 13 and sorted(Fake.calls) == ["d0_u0", "d0_u1"]
    # Another identity (params): everything recomputed ...
    Fake.calls = []
    meta = run(table, out, params={"scale": 2.0})
    assert meta["reused"] == 0 and len(Fake.calls) == 15
    assert read_features(out, table["utterance_id"].tolist()).matrix[0, 2] == 2.0
    # ... and switching back finds every earlier vector again, in any output directory: the DVC
    # output may have been deleted or replaced by another corpus meanwhile.
    Fake.calls = []
    meta = run(table, tmp_path / "elsewhere", store=FeatureStore(f"{out}.store"))
    assert meta["reused"] == 15 and Fake.calls == []
    np.testing.assert_array_equal(read_features(tmp_path / "elsewhere", table["utterance_id"].tolist()).matrix,
                                  f.matrix)
    shelves = {info["params"]["scale"]: info["dim"] for _, info in FeatureStore(f"{out}.store").shelves()}
    assert shelves == {1.0: 3, 2.0: 3}
    from extractors.store import main

    assert main(["--root", f"{out}.store"]) == 0
    listing = capsys.readouterr().out
    assert "2 shelves" in listing and "audio/fake-" in listing and "15 vectors" in listing


def test_a_vector_is_filed_under_its_input_not_its_utterance_id(tmp_path, iemocap_manifest, monkeypatch):
    """Media fingerprints are content digests: another corpus, path or mtime with the same bytes
    and span shares the vector; other bytes do not."""
    import os
    import shutil

    from extractors.audio.librosa_stats import LibrosaAudio

    store, e = FeatureStore(tmp_path / "store"), LibrosaAudio()
    m = iemocap_manifest
    row = m.table.iloc[0]
    source = m.media_path(row["audio_path"])
    copy = tmp_path / "copy" / "renamed.wav"
    copy.parent.mkdir()
    shutil.copyfile(source, copy)
    os.utime(copy, ns=(1, 1))
    key = e.input_key(row, m.media_path, store.digest)
    assert e.input_key(row.copy(), lambda _: copy, store.digest) == key
    assert e.input_key(row.copy(), lambda _: None, store.digest) != key          # no media
    later = row.copy()
    later["audio_start_s"] = 0.25 if pd.isna(later["audio_start_s"]) else later["audio_start_s"] + 0.25
    assert e.input_key(later, m.media_path, store.digest) != key                # another span
    copy.write_bytes(copy.read_bytes()[:-2] + b"\x01\x02")
    assert e.input_key(row.copy(), lambda _: copy, store.digest) != key          # other bytes
    # The digest is memoized by (path, size, mtime, inode): an unchanged file is not hashed again.
    import extractors.store

    def no_hashing():
        raise AssertionError("hashed again")

    monkeypatch.setattr(extractors.store.hashlib, "sha256", no_hashing)
    assert FeatureStore(tmp_path / "store").digest(source) == store.digest(source)
    copy.write_bytes(copy.read_bytes() + b"\0")
    with pytest.raises(AssertionError, match="hashed again"):
        store.digest(copy)   # changed since its last digest


def test_stale_and_incomplete_caches_are_refused(table, tmp_path):
    run(table, tmp_path)
    ids = table["utterance_id"].tolist()
    params = {"scale": 1.0, "batch_size": 4}
    with pytest.raises(CacheError, match="stale: built by extractor 'fake', requested 'opensmile'"):
        read_features(tmp_path, ids, "opensmile", params)
    with pytest.raises(CacheError, match=r"stale: built with other extractor params \(scale\)"):
        read_features(tmp_path, ids, "fake", {**params, "scale": 3.0})
    with pytest.raises(CacheError, match="stale: built for another manifest .15 rows, 1 manifest utterances absent"):
        read_features(tmp_path, ids + ["new"], "fake", params)
    with pytest.raises(CacheError, match="another order"):
        read_features(tmp_path, ids[::-1], "fake", params)
    built = Fake.code_digest()
    assert read_features(tmp_path, ids, "fake", params, built).present.all()
    with pytest.raises(CacheError, match=f"stale: built by other extractor code \\(code_sha256 {built}, "
                                         "the code now: edited\\)"):
        read_features(tmp_path, ids, "fake", params, "edited")
    meta = json.loads((tmp_path / "meta.json").read_text())
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "complete": False}))
    with pytest.raises(CacheError, match="incomplete"):
        read_features(tmp_path, ids)
    with pytest.raises(CacheError, match="no cache here"):
        read_features(tmp_path / "nothing", ids)
    write_unused(tmp_path / "unused", "visual", ["text"])
    assert [p.name for p in (tmp_path / "unused").iterdir()] == ["meta.json"]
    with pytest.raises(CacheError, match=r"visual is not in modalities \['text'\], so it was not extracted"):
        read_features(tmp_path / "unused", ids)


def test_failures_nan_and_threshold(table, tmp_path):
    Fake.fail, Fake.nan = {"d0_u1", "d2_u4"}, {"d1_u0"}
    try:
        meta = run(table, tmp_path, max_failed_fraction=0.5)
        assert meta["n_failed"] == 3 and meta["n_ok"] == 12
        assert {f["utterance_id"]: f["reason"] for f in meta["failures"]} == {
            "d0_u1": "unreadable audio x.wav: broken", "d1_u0": "non-finite feature values",
            "d2_u4": "unreadable audio x.wav: broken"}
        f = read_features(tmp_path, table["utterance_id"].tolist())
        assert f.present.sum() == 12 and not f.present[1] and (f.matrix[~f.present] == 0).all()
        assert np.isfinite(f.matrix).all()
        with pytest.raises(ExtractionError, match=r"3 of 15 utterances failed \(> max_failed_fraction=0.1\)[\s\S]*2 x unreadable audio"):
            run(table, tmp_path, max_failed_fraction=0.1)
        # The record stays (failures listed), but the cache is never used as a complete one.
        meta = json.loads((tmp_path / "meta.json").read_text())
        assert meta["complete"] is False and len(meta["failures"]) == 3
        with pytest.raises(CacheError, match="the extraction failed: extract.audio: 3 of 15"):
            read_features(tmp_path, table["utterance_id"].tolist())
    finally:
        Fake.fail, Fake.nan = set(), set()


@pytest.mark.slow
def test_kill_9_mid_run_then_resume(tmp_path, iemocap_manifest):
    """A real extraction killed with SIGKILL loses at most the chunk in flight: what it filed in the
    store is found again by the rerun, and the result equals an uninterrupted run's."""
    manifest.write(iemocap_manifest, pd.DataFrame(), tmp_path / "prepared")
    params = {"extract": {"audio": {"name": "opensmile", "opensmile": {"feature_set": "IS10"},
                                    "chunk_size": 4}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cmd = [sys.executable, "-m", "pipeline.extract", "audio", "--params", str(tmp_path / "params.yaml"),
           "--manifest", str(tmp_path / "prepared")]
    out, store = tmp_path / "features", tmp_path / "store"
    victim = subprocess.Popen(cmd + ["--out", str(out), "--store", str(store)], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(store.glob("audio/*/*.npz"))) < 2:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    survived = len(list(store.glob("audio/*/*.npz")))
    assert survived >= 2 and not (out / "meta.json").exists()
    with pytest.raises(CacheError, match="no cache here"):
        read_features(out, iemocap_manifest.table["utterance_id"].tolist())
    resumed = subprocess.run(cmd + ["--out", str(out), "--store", str(store)], cwd=REPO,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    meta = json.loads((out / "meta.json").read_text())
    reused = int(re.search(r"(\d+) from the store", resumed.stdout).group(1))
    assert reused >= 4 * survived and meta["n_ok"] == len(iemocap_manifest.table)
    clean = subprocess.run(cmd + ["--out", str(tmp_path / "clean"), "--store", str(tmp_path / "fresh")],
                           cwd=REPO, capture_output=True)
    assert clean.returncode == 0
    ids = iemocap_manifest.table["utterance_id"].tolist()
    np.testing.assert_array_equal(read_features(out, ids).matrix,
                                  read_features(tmp_path / "clean", ids).matrix)
    # The cache records nothing about how it was assembled (no timings, no store counts): the same
    # features give byte-identical files, so DVC does not re-run what consumes them.
    for name in ("meta.json", "features.npy", "mask.npy", "ids.txt", "keys.txt"):
        assert (out / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name


def test_batches_follow_the_extractors_order_key(table, tmp_path):
    class Sorted(Fake):
        def order_key(self, row):
            return -int(row["utterance_id"][-1])   # e.g. text length for the text extractor

    Fake.calls = []
    e = Sorted()
    meta = extract(table, lambda p: None, e, tmp_path, params={}, store=FeatureStore(tmp_path / "store"),
                   chunk_size=5, progress=False)
    assert Fake.calls[:5] == ["d0_u4", "d0_u3", "d0_u2", "d0_u1", "d0_u0"]
    f = read_features(tmp_path, table["utterance_id"].tolist())
    assert meta["n_ok"] == 15 and f.matrix[1, 0] == 1  # rows stay in manifest order


def test_editing_the_extractor_code_invalidates_its_results(table, tmp_path, monkeypatch):
    run(table, tmp_path / "features")
    Fake.calls = []
    monkeypatch.setattr(Fake, "code_digest", lambda self: "edited")
    meta = run(table, tmp_path / "features")
    assert meta["reused"] == 0 and len(Fake.calls) == 15 and meta["identity"]["code_sha256"] == "edited"


def test_one_computation_per_distinct_input(table, tmp_path):
    """Utterances with the same input share one vector, bit for bit (computed once, or taken from
    the store), so a run on an empty store and a run served by the store give the same cache."""
    class ByText(Fake):
        def input_key(self, row, media_path, digest):
            return row["text"]

    same = table.assign(text=[f"t{i % 4}" for i in range(len(table))])   # 4 distinct inputs
    Fake.calls, Fake.fail = [], {"d0_u1"}                                # d0_u1 reads "t1"
    try:
        e = ByText()
        meta = extract(same, lambda p: None, e, tmp_path / "a", params={}, store=FeatureStore(tmp_path / "s"),
                       progress=False, max_failed_fraction=1.0)
    finally:
        Fake.fail = set()
    assert len(Fake.calls) == 3 and meta["computed"] == 4   # t1's one load failed, so 3 forwards
    f = read_features(tmp_path / "a", same["utterance_id"].tolist())
    groups = same.groupby("text").indices
    for text, rows in groups.items():
        assert (f.matrix[rows] == f.matrix[rows[0]]).all()
    assert not f.present[groups["t1"]].any() and f.present[groups["t0"]].all()
    reasons = {x["utterance_id"]: x["reason"] for x in f.meta["failures"]}
    assert set(reasons) == {same["utterance_id"][i] for i in groups["t1"]}


def test_code_digest_ignores_comments_and_docstrings_not_code():
    """An extractor's ``code_sha256`` hashes its code's syntax tree without docstrings: a comment or
    docstring edit keeps the identity (the store serves every vector; train/evaluate stay valid),
    any change to what runs does not."""
    from extractors.base import code_fingerprint

    source = 'def f(x):\n    """Doc."""\n    return x + 1  # one\n'
    same = ['"""Module doc."""\n' + source, source.replace("# one", "# two"),
            source.replace('"""Doc."""', '"""Other doc."""'), source.replace("return x + 1", "return (x\n            + 1)"),
            "# a new comment\n\n" + source]
    other = [source.replace("x + 1", "x + 2"), source.replace('"""Doc."""', 'y = "Doc."'),
             source.replace("return x + 1", "return 1 + x"), source + "\nz = 0\n"]
    assert {code_fingerprint(s) for s in same} == {code_fingerprint(source)}
    assert len({code_fingerprint(s) for s in [source, *other]}) == len(other) + 1


def test_an_extractors_code_is_every_project_module_it_loads():
    """The files hashed into ``code_sha256`` (read from import statements, nothing imported) hold
    every module of ``extractors``/``model`` that importing the family really loads (registries
    and package ``__init__`` files aside), and no module of another family."""
    from extractors import EXTRACTORS
    from extractors.base import implementation_files

    for name in EXTRACTORS.names():
        module = str(EXTRACTORS.target(name)).partition(":")[0]
        script = (f"import sys, {module}\nfor m in list(sys.modules.values()):\n"
                  f"    print(getattr(m, '__file__', None) or '')")
        loaded = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.split()
        paths = [Path(f).resolve() for f in loaded if f]
        ours = {str(p.relative_to(REPO)) for p in paths if p.is_relative_to(REPO)}
        ours = {f for f in ours if f.startswith(("extractors/", "model/")) and not f.endswith("__init__.py")}
        hashed = {str(p.relative_to(REPO)) for p in implementation_files(module)}
        assert ours <= hashed, (name, ours - hashed)
        family = module.split(".")[1]
        assert not [f for f in hashed if f.count("/") == 2 and f.split("/")[1] != family], (name, hashed)
