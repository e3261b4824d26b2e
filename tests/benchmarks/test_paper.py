"""benchmarks/paper, the paper's experiments as their own DVC project (its stages, deps and results)."""
import json
import re
import subprocess
import sys

import yaml

from tests.conftest import REPO, covered, run

PAPER = REPO / "benchmarks" / "paper"


def stages() -> dict:
    return yaml.safe_load((PAPER / "dvc.yaml").read_text())["stages"]


def experiment_imports() -> list[str]:
    """The repository files `python -m pipeline.experiment` loads with its params, and every model
    an experiment can switch to (the registries load them by name)."""
    script = ("import pipeline.experiment as e\nfrom model import MODELS\n"
              "e.load_params(e.Path('params.yaml'), [], e.params_extensions(), e.SECTIONS)\n"
              "for name in MODELS.names():\n    MODELS.get(name)\n"
              "from pipeline.cli import imported_repo_files\nprint('\\n'.join(imported_repo_files()))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_each_stage_runs_one_experiment_file_and_tracks_the_code_it_imports():
    settings = yaml.safe_load((PAPER / "params.yaml").read_text())
    imported = experiment_imports()
    assert "pipeline/experiment.py" in imported and "model/ar_iigcn.py" in imported
    for name, stage in stages().items():
        stage = stage.get("do", stage)                       # foreach stages keep theirs under do
        code = [d.removeprefix("../../") for d in stage["deps"] if d.startswith("../../")
                and not d.startswith(("../../data", "../../${"))]
        assert [f for f in imported if not covered(f, code)] == [], name
        # ... and no more: a file the command never imports is no dep (an edit re-runs only what it can affect)
        assert [d for d in code if d != "model" and d not in imported] == [], name
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
    from pipeline.lib.timings import SUFFIX as TIMINGS

    results = [p for p in (PAPER / "results").glob("*/*.json") if not p.name.endswith(TIMINGS)]
    assert len(results) >= 30
    for result_path in sorted(results):   # (a run's untracked timings lie beside its result)
        result = json.loads(result_path.read_text())
        table = result_path.with_suffix(".md").read_text()
        assert result_path.with_suffix(".png").is_file(), result_path
        for row in result["points"]:
            stat = row.get("test_wa_f1")
            if stat:
                assert f"| {row['point']} |" in table and f"{100 * stat['mean']:.2f}" in table, (result_path, row)
        assert len(result["seeds"]) >= 3, f"{result_path}: fewer than 3 seeds"
