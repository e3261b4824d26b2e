import pytest

from pipeline.params import load_params, load_section, set_dotted


def test_overrides_use_dotted_keys_and_yaml_values(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("model:\n  graph: diff\n  window: 20\ntrain:\n  seeds: [0]\n")
    params = load_params(path, ["model.graph=gat", "train.seeds=[0, 1, 2]", "new.section.key=1e-3",
                                "model.window=6"])
    assert params["model"] == {"graph": "gat", "window": 6}
    assert params["train"]["seeds"] == [0, 1, 2]
    assert params["new"] == {"section": {"key": "1e-3"}}   # YAML 1.1: 1e-3 without a dot is a string
    assert load_section("model", path, ["model.graph=none"])["graph"] == "none"


def test_bad_overrides_and_files_are_named(tmp_path):
    params = {"model": {"graph": "diff"}}
    with pytest.raises(ValueError, match="expected key.path=value"):
        set_dotted(params, "model.graph")
    with pytest.raises(ValueError, match="model.graph is not a section"):
        set_dotted(params, "model.graph.x=1")
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "p.yaml").write_text("model: {}\n")
    with pytest.raises(KeyError, match="no 'train:' section"):
        load_section("train", tmp_path / "p.yaml")
