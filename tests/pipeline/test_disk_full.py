"""A full disk wherever a stage writes: one line naming the file and the lack of space, no
temporary file left, nothing marked complete, and a rerun after space is freed gives what an
uninterrupted run gives."""
import errno
import os

import pandas as pd
import pytest

from config import paths
from tests.conftest import REPO


class FullAfter:
    """``open`` that fails with ENOSPC on the n-th file a writer opens for writing (the rest as usual)."""

    def __init__(self, n: int, where: str) -> None:
        self.n, self.where, self.seen, self.real = n, where, 0, open

    def __call__(self, file, mode="r", *args, **kwargs):
        if "w" in mode and self.where in str(file):
            self.seen += 1
            if self.seen == self.n:
                handle = self.real(file, mode, *args, **kwargs)
                handle.close()            # created, as a real full disk would have it, then:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.real(file, mode, *args, **kwargs)


def leftovers(*roots) -> list[str]:
    return [str(p) for root in roots for p in root.rglob("*.tmp")]


@pytest.mark.parametrize("where, n", [("store", 2), ("features", 1), ("features", 5)])
def test_extraction_on_a_full_disk_stops_in_one_line_and_resumes(tmp_path, monkeypatch, capsys,
                                                                  iemocap_manifest, where, n):
    from pipeline import extract
    from pipeline.lib import manifest

    m = iemocap_manifest
    manifest_dir = tmp_path / "prepared"
    manifest.write(m, pd.DataFrame(), manifest_dir)
    args = ["audio", "--params", str(REPO / "params.yaml"), "--set", "extract.audio.name=librosa",
            "--set", "modalities=[audio]", "--manifest", str(manifest_dir)]
    store = tmp_path / "store"
    monkeypatch.setenv("AMBDSGDN_FEATURE_STORE", str(store))
    monkeypatch.setattr(paths, "open", FullAfter(n, str(tmp_path / where)), raising=False)
    assert extract.main([*args, "--out", str(tmp_path / "features")]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line or "Traceback" in line]
    assert len(err) == 1 and "no space left on the device writing" in err[0] and str(tmp_path) in err[0]
    assert leftovers(tmp_path) == []
    meta = tmp_path / "features" / "meta.json"
    assert not meta.exists() or '"complete": true' not in meta.read_text()
    monkeypatch.undo()
    monkeypatch.setenv("AMBDSGDN_FEATURE_STORE", str(store))
    assert extract.main([*args, "--out", str(tmp_path / "features")]) == 0
    monkeypatch.setenv("AMBDSGDN_FEATURE_STORE", str(tmp_path / "clean_store"))
    assert extract.main([*args, "--out", str(tmp_path / "clean")]) == 0
    for name in ("features.npy", "mask.npy", "ids.txt", "keys.txt"):
        assert (tmp_path / "features" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()


def test_a_model_folder_on_a_full_disk_leaves_no_half_file(tmp_path, monkeypatch):
    import torch

    from config.model import ModelConfig
    from model.ambdsgdn import AMBDSGDN
    from model.folder import ModelFolder

    model = AMBDSGDN(ModelConfig({"text": 4}, 2, d_hidden=8, window=2, encoder_heads=2))
    folder = ModelFolder.from_state(model="ambdsgdn", model_config=model.config.to_dict(),
                                    state_dict=model.state_dict(), labels=["a", "b"], corpus="c",
                                    features={"text": {}}, provenance={})
    monkeypatch.setattr(paths, "open", FullAfter(1, str(tmp_path)), raising=False)
    with pytest.raises(OSError) as info:
        folder.save_pretrained(tmp_path / "model")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "model" / "weights.pt")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == []
    monkeypatch.undo()
    folder.save_pretrained(tmp_path / "model")
    loaded = ModelFolder.from_pretrained(tmp_path / "model")
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(), model.state_dict().values()))
