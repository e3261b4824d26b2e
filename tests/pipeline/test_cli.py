import pytest

from pipeline.cli import TRACE_ENV, stage_main


def stage(error: BaseException | None):
    def run_cli(args):
        if error is not None:
            raise error

    return stage_main("thing", "Stage thing: does a thing.", lambda parser: None, run_cli)


@pytest.mark.parametrize("error, message", [
    (ValueError("params.yaml: x.y: unknown key"), "thing: error: params.yaml: x.y: unknown key"),
    (KeyError("params.yaml: no 'train:' section"), "thing: error: params.yaml: no 'train:' section"),
    (FileNotFoundError("a.csv: not found"), "thing: error: a.csv: not found"),
])
def test_user_errors_are_one_line_and_exit_1(error, message, capsys):
    assert stage(error)([]) == 1
    assert capsys.readouterr().err.strip() == message


def test_a_bug_keeps_its_traceback():
    with pytest.raises(TypeError, match="a bug"):
        stage(TypeError("a bug"))([])


def test_every_stage_takes_params_and_overrides_and_can_trace_its_imports(tmp_path, monkeypatch):
    seen = {}
    main = stage_main("thing", None, lambda parser: None, lambda args: seen.update(vars(args)))
    monkeypatch.setenv(TRACE_ENV, str(tmp_path))
    assert main(["--params", "p.yaml", "--set", "a.b=1"]) == 0
    assert str(seen["params"]) == "p.yaml" and seen["overrides"] == ["a.b=1"]
    traced = (tmp_path / "thing.txt").read_text().split()
    assert "pipeline/cli.py" in traced and all(f.split("/")[0] in ("config", "pipeline", "extractors", "model")
                                               for f in traced)


@pytest.mark.parametrize("stage, listed", [
    ("prepare", "prepare.corpus: auto | iemocap | meld | csv"),
    ("demo", "demo.layout: iemocap | meld"),
    ("train", "model.graph: diff | gat | none"),
    ("extract", "extract.audio.name: opensmile | librosa"),
])
def test_help_lists_the_registered_names(stage, listed, capsys):
    import importlib

    with pytest.raises(SystemExit):
        importlib.import_module(f"pipeline.{stage}").main(["--help"])
    assert listed in " ".join(capsys.readouterr().out.split())
