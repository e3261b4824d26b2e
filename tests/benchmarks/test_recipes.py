"""The benchmark's own params file: only the lists its DVC template expands (the stages read the
recipes, which go through the core schema: tests/config/test_params.py)."""

import shutil

import pytest
import yaml

from config.schema import check_launcher
from tests.conftest import REPO, covered

BENCH = REPO / "benchmarks" / "text_only"


def test_the_benchmark_params_name_corpora_and_feature_sets_that_have_recipes():
    params = yaml.safe_load((BENCH / "params.yaml").read_text())
    assert set(params) == {"corpora", "features", "frozen", "finetuned", "launcher"}
    # DVC cannot derive one list from the others: the rows are exactly the extracted feature sets
    assert params["features"] == params["frozen"] + [f"{encoder}_ft" for encoder in params["finetuned"]]
    check_launcher(params["launcher"])         # the root params' rule (docs/parallel.md)
    assert all(set(c) == {"root"} and isinstance(c["root"], str) for c in params["corpora"].values())
    for corpus in params["corpora"]:
        assert (BENCH / f"{corpus}.yaml").is_file()
        for features in params["features"]:
            assert (BENCH / "recipes" / f"{corpus}_{features}.yaml").is_file(), (corpus, features)
        for encoder in params["finetuned"]:
            assert (BENCH / "recipes" / f"{corpus}_{encoder}_ft.yaml").is_file(), (corpus, encoder)


def resolved_stages(where, **lists) -> dict:
    """Stage name -> DVC's stage, from the benchmark's dvc.yaml with ``lists`` replacing params.yaml's."""
    from dvc.repo import Repo

    shutil.copy(BENCH / "dvc.yaml", where / "dvc.yaml")
    params = yaml.safe_load((BENCH / "params.yaml").read_text())
    (where / "params.yaml").write_text(yaml.safe_dump({**params, **lists}))
    Repo.init(where, no_scm=True)
    return {stage.name: stage for stage in Repo(where).index.stages}


@pytest.mark.parametrize("frozen, finetuned", [(["minilm", "mpnet"], ["minilm", "mpnet"]), (["mpnet"], [])])
def test_each_extraction_depends_on_the_one_encoder_it_reads(tmp_path, frozen, finetuned):
    """Fine-tuning one encoder re-runs no other encoder's extraction; nothing fine-tuned is allowed."""
    stages = resolved_stages(tmp_path, frozen=frozen, finetuned=finetuned,
                             features=frozen + [f"{e}_ft" for e in finetuned])
    for corpus in yaml.safe_load((BENCH / "params.yaml").read_text())["corpora"]:
        for encoder in frozen:
            deps = {str(dep.def_path) for dep in stages[f"extract@{corpus}-{encoder}"].deps}
            assert not [d for d in deps if "finetuned" in d], deps
        for encoder in finetuned:
            deps = {str(dep.def_path) for dep in stages[f"extract_ft@{corpus}-{encoder}"].deps}
            assert [d for d in deps if "finetuned" in d] == [f"data/{corpus}/finetuned/{encoder}"]
            outs = [str(out.def_path) for out in stages[f"finetune@{corpus}-{encoder}"].outs]
            assert outs == [f"data/{corpus}/finetuned/{encoder}"]
        assert not [name for name in stages if name.startswith(f"extract@{corpus}-") and name.endswith("_ft")]


EDITS = [   # a repository file -> the benchmark's stage groups an edit of it can affect
    ("pipeline/experiment.py", set()),              # the paper's benchmark, not this one
    ("pipeline/predict.py", set()),
    ("pipeline/sweep.py", {"sweep"}),
    ("pipeline/baseline.py", {"baseline"}),
    ("pipeline/lib/plots.py", {"evaluate", "evaluate_ar"}),
    ("extractors/text/finetune.py", {"finetune", "extract", "extract_ft"}),
    ("extractors/visual/faces.py", set()),
    ("model/diffrgcn.py", {"train", "evaluate", "train_ar", "evaluate_ar", "sweep"}),
    ("pipeline/corpora/meld.py", {"prepare"}),
    ("config/schema.py", {"prepare", "finetune", "extract", "extract_ft", "train", "evaluate",
                          "train_ar", "evaluate_ar", "baseline", "sweep", "report"}),
]


@pytest.mark.parametrize("path, affected", EDITS, ids=[p for p, _ in EDITS])
def test_an_edit_re_runs_only_the_benchmark_stages_it_can_affect(tmp_path, path, affected):
    """The stages' code deps are the files they import (the import trace of
    tests/benchmarks/test_text_only.py checks none is missing), not whole packages."""
    hit = set()
    for stage in resolved_stages(tmp_path).values():
        code = [str(dep.def_path).removeprefix("../../") for dep in stage.deps if str(dep.def_path).startswith("../../")]
        if covered(path, code):
            hit.add(stage.name.split("@")[0])
    assert hit == affected
