"""A one-line edit re-runs only the stages it can affect (issue #24's table, measured as a user
would: a scratch copy of the repository with the committed dvc.lock, one comment line appended to
one file, ``dvc status``). Each stage's deps are the files it imports (tests/test_dvc_pipeline.py
checks them against an import trace), so this also checks that no stage imports more than it needs.
"""
import pytest

from extractors.base import code_digest
from tests.conftest import changed_stages, copy_repo

EXTRACT = {"extract@text", "extract@audio", "extract@visual"}
ALL = {"demo", "prepare", "finetune", *EXTRACT, "train", "evaluate", "export"}

EDITS = [   # file -> the stages an edit of it can affect
    ("pipeline/predict.py", set()),             # no stage runs it
    ("pipeline/report.py", set()),
    ("pipeline/sweep.py", set()),
    ("pipeline/lib/predictor.py", set()),
    ("model/diffrgcn.py", {"train", "evaluate"}),
    ("model/context_free.py", {"train", "evaluate"}),   # the model/ folder: train and evaluate only
    ("model/data.py", {"finetune", "train", "evaluate", "export"}),   # batching; export reads the splits
    ("config/model.py", {"prepare", "train", "evaluate"}),   # prepare: model.max_speakers
    ("config/ar_iigcn.py", {"train", "evaluate"}),           # the second model's params
    ("model/ar_iigcn.py", {"train", "evaluate"}),
    ("config/demo.py", {"demo"}),
    ("pipeline/corpora/meld.py", {"prepare"}),
    ("pipeline/democorpus/story.py", {"demo"}),
    ("pipeline/lib/plots.py", {"evaluate"}),
    ("extractors/audio/opensmile_functionals.py", {"extract@audio"}),
    ("extractors/visual/faces.py", {"extract@visual"}),
    ("extractors/text/hf_transformers.py", {"finetune", "extract@text"}),   # fine-tuning loads through it
    ("extractors/media_io.py", {"extract@audio", "extract@visual"}),
    ("extractors/cache.py", EXTRACT | {"train", "evaluate", "export"}),
    ("extractors/pickled.py", EXTRACT),                  # the family of every modality
    ("extractors/feature_pickles.py", EXTRACT | {"prepare", "export"}),   # the released files' format
    ("pipeline/lib/exported.py", {"export"}),
    ("pipeline/lib/manifest.py", ALL - {"demo"}),
    ("config/schema.py", ALL),                  # every stage reads its params through it
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("stale") / "repo")
    assert changed_stages(repo) == {}
    return repo


@pytest.mark.parametrize("path, affected", EDITS, ids=[p for p, _ in EDITS])
def test_a_comment_re_runs_only_what_it_can_affect(scratch, path, affected):
    target = scratch / path
    original = target.read_bytes()
    try:
        target.write_bytes(original + b"# a comment\n")
        assert set(changed_stages(scratch)) == affected
    finally:
        target.write_bytes(original)


@pytest.mark.parametrize("module", ["extractors.audio.opensmile_functionals", "extractors.text.hf_transformers"])
def test_train_and_evaluate_follow_an_extractor_edit_only_through_its_identity(scratch, module, monkeypatch):
    """An extract stage re-runs on any edit of its family; a comment or docstring keeps the
    family's ``code_sha256``, so the re-run writes the same cache and train/evaluate stay valid;
    a code edit changes it (train/evaluate re-run because the cache changed)."""
    import extractors.base as base

    monkeypatch.setattr(base, "REPO", scratch)
    target = scratch / (module.replace(".", "/") + ".py")
    original = target.read_text()
    before = code_digest(module)
    try:
        assert original.startswith('"""')
        target.write_text('"""An edited docstring. ' + original[3:] + "\n# a comment\n")
        assert code_digest(module) == before
        target.write_text(original + "\nNEW_CONSTANT = 1\n")
        assert code_digest(module) != before
    finally:
        target.write_text(original)
