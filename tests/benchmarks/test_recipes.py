"""The benchmark's own params file: only the lists its DVC template expands (the stages read the
recipes, which go through the core schema: tests/config/test_params.py)."""

import yaml

from config.schema import check_launcher
from tests.conftest import REPO

BENCH = REPO / "benchmarks" / "text_only"


def test_the_benchmark_params_name_corpora_and_feature_sets_that_have_recipes():
    params = yaml.safe_load((BENCH / "params.yaml").read_text())
    assert set(params) == {"corpora", "features", "finetuned", "launcher"}
    check_launcher(params["launcher"])         # the root params' rule (docs/parallel.md)
    assert all(set(c) == {"root"} and isinstance(c["root"], str) for c in params["corpora"].values())
    for corpus in params["corpora"]:
        assert (BENCH / f"{corpus}.yaml").is_file()
        for features in params["features"]:
            assert (BENCH / "recipes" / f"{corpus}_{features}.yaml").is_file(), (corpus, features)
        for encoder in params["finetuned"]:
            assert (BENCH / "recipes" / f"{corpus}_{encoder}_ft.yaml").is_file(), (corpus, encoder)
