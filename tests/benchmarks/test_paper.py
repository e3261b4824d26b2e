"""benchmarks/paper, the paper's experiments as their own DVC project (its stages, deps and results)."""
import json
import re

import yaml

from tests.conftest import REPO, run

PAPER = REPO / "benchmarks" / "paper"
PACKAGES = {"../../config", "../../pipeline", "../../model", "../../extractors"}


def stages() -> dict:
    return yaml.safe_load((PAPER / "dvc.yaml").read_text())["stages"]


def test_each_stage_runs_one_experiment_file_and_tracks_the_code_it_imports():
    settings = yaml.safe_load((PAPER / "params.yaml").read_text())
    for name, stage in stages().items():
        stage = stage.get("do", stage)                       # foreach stages keep theirs under do
        assert PACKAGES <= set(stage["deps"]), name          # a superset of its import trace
        run = re.search(r"python -m pipeline\.experiment run (experiments/\S+\.yaml)", stage["cmd"])
        assert run and run.group(1) in stage["deps"], name   # the experiment file it runs is a dep
    for key in ("demo_experiments", "text_experiments"):
        for experiment in settings[key]:
            assert (PAPER / "experiments" / f"{experiment}.yaml").is_file(), experiment
    used = set(settings["demo_experiments"]) | set(settings["text_experiments"])
    assert used == {p.stem for p in (PAPER / "experiments").glob("*.yaml")}


def test_it_is_a_project_of_its_own():
    """The root project's `dvc repro` (make demo) never runs, lists or waits for these stages."""
    assert (PAPER / ".dvc" / "config").is_file()
    listed = run(["dvc", "stage", "list"], REPO)
    assert "demo@table4" not in listed and "evaluate" in listed


def test_committed_results_match_their_tables():
    """Every committed result has its table and figure, and the table shows the result's numbers."""
    for result_path in sorted((PAPER / "results").glob("*/*.json")):
        result = json.loads(result_path.read_text())
        table = result_path.with_suffix(".md").read_text()
        assert result_path.with_suffix(".png").is_file(), result_path
        for row in result["points"]:
            stat = row.get("test_wa_f1")
            if stat:
                assert f"| {row['point']} |" in table and f"{100 * stat['mean']:.2f}" in table, (result_path, row)
        assert len(result["seeds"]) >= 3, f"{result_path}: fewer than 3 seeds"
