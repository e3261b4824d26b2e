"""The dev-only sweep: every point trained and scored on dev, the test split never scored."""
import json

import pytest
import yaml

from pipeline import sweep
from tests.pipeline.test_train_evaluate import params, workdir  # noqa: F401  (the module's fixture)


def test_each_point_is_scored_on_dev_and_the_best_is_selected(workdir, tmp_path, monkeypatch):  # noqa: F811
    import model.training

    real, scored = model.training.predict, []

    def spy(model_, items, *args, **kwargs):
        scored.extend(d.dialogue_id for d in items)
        return real(model_, items, *args, **kwargs)

    monkeypatch.setattr(model.training, "predict", spy)
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"points": {"recipe": {}, "fast": {"train.lr": 5e-3, "model.dropout": 0.0},
                                               "narrow": {"model.window": 1}}}, sort_keys=False))
    result = sweep.run(params(train={"seeds": [0], "epochs": 2}), grid, workdir / "prepared", workdir / "features",
                       tmp_path / "out" / "sweep.md")
    from pipeline.lib import manifest

    m = manifest.read(workdir / "prepared")
    test = set(m.table.loc[m.table["split"] == "test", "dialogue_id"])
    assert scored and not set(scored) & test                       # test never scored
    assert [p["point"] for p in result["points"]] == ["recipe", "fast", "narrow"]
    best = max(result["points"], key=lambda p: p["dev_wa_f1"])
    assert result["selected"] == {"point": best["point"], "settings": best["settings"]}
    saved = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert saved == json.loads(json.dumps(result))
    table = (tmp_path / "out" / "sweep.md").read_text()
    assert f"| {best['point']} **(selected)** |" in table and "train.lr=0.005, model.dropout=0.0" in table


def test_a_bad_grid_or_point_is_named_before_any_training(workdir, tmp_path):  # noqa: F811
    grid = tmp_path / "grid.yaml"
    grid.write_text("points: []\n")
    with pytest.raises(ValueError, match="grid.yaml: expected `points:`"):
        sweep.run(params(), grid, workdir / "prepared", workdir / "features", tmp_path / "s.md")
    grid.write_text(yaml.safe_dump({"points": {"ok": {}, "typo": {"train.lrr": 1.0}}}))
    with pytest.raises(ValueError, match="train.lrr: unknown key"):
        sweep.run(params(), grid, workdir / "prepared", workdir / "features", tmp_path / "s.md")
    assert not (tmp_path / "s.md").exists()


def test_the_benchmark_grids_fit_their_recipes():
    from config.params import load_params
    from tests.conftest import REPO

    bench = REPO / "benchmarks" / "text_only"
    for grid in sorted((bench / "grids").glob("*.yaml")):
        points = sweep.read_grid(grid)
        keys = {frozenset(p) for p in points.values()}
        assert len(keys) == 1, f"{grid}: every point sets the same keys"
        for recipe in sorted((bench / "recipes").glob(f"{grid.stem}_*.yaml")):
            for point in points.values():
                sweep.with_point(load_params(recipe), point, [0])


def test_each_benchmark_recipe_uses_its_sweeps_selected_point():
    """A committed recipe holds the settings its committed dev-only sweep selected."""
    from config.params import load_params
    from tests.conftest import REPO

    bench = REPO / "benchmarks" / "text_only"
    for result in sorted((bench / "sweeps").glob("*.json")):
        recipe = load_params(bench / "recipes" / f"{result.stem}.yaml")
        selected = json.loads(result.read_text())["selected"]
        for key, value in selected["settings"].items():
            section, _, name = key.partition(".")
            assert recipe[section][name] == value, (result.name, selected["point"], key)
