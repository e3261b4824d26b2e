"""The committed dvc.lock is the one the committed code and params give: in a fresh copy (no
outputs, no DVC cache) `dvc status` may say that data is missing, never that a code dependency or
a param changed. Otherwise `make demo` in a fresh clone re-runs stages and leaves `git status`
dirty (run `make demo` and commit dvc.lock after changing code a stage depends on)."""
import json

from tests.conftest import copy_repo, run


def test_the_committed_lock_matches_the_code_and_params(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    status = json.loads(run(["dvc", "status", "--json"], repo))
    stale = {}
    for stage, entries in status.items():
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            changed = {path: how for path, how in entry.get("changed deps", {}).items() if how != "deleted"}
            if changed or entry.get("changed params") or entry.get("changed command"):
                stale[stage] = {**changed, **({"params": entry["changed params"]} if entry.get("changed params")
                                              else {})}
    assert stale == {}, f"dvc.lock is stale (run `make demo`, commit dvc.lock): {stale}"
