"""The committed dvc.lock is the one the committed code and params give: in a fresh copy (no
outputs, no DVC cache) `dvc status` may say that data is missing, never that a code dependency or
a param changed. Otherwise `make demo` in a fresh clone re-runs stages and leaves `git status`
dirty (run `make demo` and commit dvc.lock after changing code a stage depends on)."""
from tests.conftest import changed_stages, copy_repo


def test_the_committed_lock_matches_the_code_and_params(tmp_path):
    stale = changed_stages(copy_repo(tmp_path / "repo"))
    assert stale == {}, f"dvc.lock is stale (run `make demo`, commit dvc.lock): {stale}"
