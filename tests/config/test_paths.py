"""Every reader of a user's file names what a path is instead of opening it: a named pipe would
block forever, a directory or a device would raise a traceback."""
import os
import subprocess
import sys

import pytest

from config.paths import file_problem
from tests.conftest import REPO


def test_what_a_path_is_is_told_without_opening_it(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    os.mkfifo(tmp_path / "pipe")
    os.symlink(tmp_path / "f.txt", tmp_path / "link")
    assert file_problem(tmp_path / "f.txt") is None and file_problem(tmp_path / "link") is None
    assert file_problem(tmp_path / "pipe") == "is a named pipe, not a file"
    assert file_problem(tmp_path) == "is a directory, not a file"
    assert file_problem("/dev/null") == "is a character device, not a file"
    assert file_problem(tmp_path / "absent") == "does not exist"


def prepare_with_fifo(tmp_path, root, fifo, *sets: str) -> tuple[int, str]:
    """``fifo`` becomes a named pipe; prepare reads ``root`` in a subprocess with a timeout (a
    reader that opens the pipe would block forever)."""
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    args = [a for s in [f"prepare.root={root}", "modalities=[text]", *sets] for a in ("--set", s)]
    done = subprocess.run([sys.executable, "-m", "pipeline.prepare", *args, "--out", str(tmp_path / "out")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr + done.stdout


def test_a_named_pipe_as_a_csv_corpus_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "corpus.csv"
    code, out = prepare_with_fifo(tmp_path, fifo, fifo, "prepare.corpus=csv")
    assert code == 1 and "corpus.csv: manifest CSV is a named pipe, not a file" in out and "Traceback" not in out
    code, out = prepare_with_fifo(tmp_path, fifo, fifo)          # corpus: auto
    assert code == 1 and "corpus.csv is a named pipe, not a file" in out and "Traceback" not in out


def test_a_named_pipe_as_an_iemocap_transcript_is_logged_not_waited_on(tmp_path, iemocap_demo):
    import shutil

    root = tmp_path / "iemocap"
    shutil.copytree(iemocap_demo, root, ignore=shutil.ignore_patterns("*.avi", "*.wav"))
    code, out = prepare_with_fifo(tmp_path, root, next(root.rglob("transcriptions/*.txt")))
    assert code == 0, out
    errors = (tmp_path / "out" / "errors.csv").read_text()
    assert "unreadable transcript" in errors and "is a named pipe, not a file" in errors


def test_a_named_pipe_as_the_params_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "params.yaml")
    done = subprocess.run([sys.executable, "-m", "pipeline.prepare", "--params", str(tmp_path / "params.yaml"),
                           "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "the params file is a named pipe, not a file" in done.stderr


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_feature_grid_that_is_not_a_file_is_refused(tmp_path, kind):
    from pipeline.sweep import read_grid

    path = tmp_path / "grid.yaml"
    path.mkdir() if kind == "directory" else os.mkfifo(path)
    with pytest.raises(ValueError, match="grid.yaml: the grid file is a"):
        read_grid(path)
