from pathlib import Path

import pytest

from config.params import load_params, load_section, set_dotted
from config.schema import ParamsError, validate
from extractors import params_extensions as extractor_extensions
from pipeline import demo, evaluate, extract, prepare, train
from pipeline.corpora import params_extensions as adapter_extensions

# What the stages pass: the registered adapters (with their params) and extractor families.
EXTENSIONS = {**adapter_extensions(), **extractor_extensions()}

REPO = Path(__file__).resolve().parents[2]
# (grids/ hold sweep points, not params files)
# (the benchmark's params.yaml holds only its DVC template's lists: tests/benchmarks checks it)
# Stage params files: the benchmarks' DVC variables (params.yaml of each benchmark project), sweep
# grids and experiment files are not (tests/pipeline/test_sweep.py and test_experiment.py check them).
PARAMS_FILES = [REPO / "params.yaml"] + sorted(
    p for p in (REPO / "benchmarks").rglob("*.yaml")
    if p.name not in ("dvc.yaml", "dvc.lock", "params.yaml") and p.parent.name not in ("grids", "experiments"))


def test_overrides_use_dotted_keys_and_yaml_values(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("model:\n  graph: diff\n  window: 20\ntrain:\n  seeds: [0]\n")
    params = load_params(path, ["model.graph=gat", "train.seeds=[0, 1, 2]", "model.window=6",
                                "train.lr=1e-3"])
    assert params["model"]["graph"] == "gat" and params["model"]["window"] == 6
    assert params["train"]["seeds"] == [0, 1, 2]
    assert params["train"]["lr"] == 0.001          # YAML 1.1 reads 1e-3 as a string: coerced for floats
    assert load_section("model", path, ["model.graph=none"])["graph"] == "none"


def test_defaults_come_from_the_code_that_owns_them(tmp_path):
    from config.model import ModelConfig
    from config.train import TrainConfig

    path = tmp_path / "p.yaml"
    path.write_text("model: {}\ntrain: {}\n")
    params = load_params(path)
    assert params["train"]["epochs"] == TrainConfig.epochs == 100
    assert params["train"]["warm_up_epochs"] == TrainConfig.warm_up_epochs == 60
    assert params["model"]["d_hidden"] == ModelConfig.d_hidden and params["train"]["seeds"] == [0]


@pytest.mark.parametrize("path", PARAMS_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_params_file_of_the_repository_fits_the_schema(path):
    params = load_params(path, extensions=EXTENSIONS)
    assert params


def test_bad_overrides_and_files_are_named(tmp_path):
    params = {"model": {"graph": "diff"}}
    with pytest.raises(ValueError, match="expected key.path=value"):
        set_dotted(params, "model.graph")
    with pytest.raises(ValueError, match="model.graph is not a section"):
        set_dotted(params, "model.graph.x=1")
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_params(tmp_path / "nope.yaml")
    (tmp_path / "p.yaml").write_text("model: {}\n")
    with pytest.raises(KeyError, match="no 'train:' section"):
        load_section("train", tmp_path / "p.yaml")
    (tmp_path / "bad.yaml").write_text("model: [\n")
    with pytest.raises(ValueError, match="bad.yaml: not valid YAML"):
        load_params(tmp_path / "bad.yaml")


@pytest.mark.parametrize("override, message", [
    ("trian.epochs=1", "trian: unknown section or key \\(accepted: baseline, demo, device, export, extract, finetune, "
                       "launcher, modalities, model, precision, prepare, threads, train\\)"),
    ("features=[minilm]", "features: unknown section or key"),      # the benchmark's, not a stage's
    ("modalities=[text, vidoe]", "modalities: unknown modality 'vidoe' in \\['text', 'vidoe'\\] \\(expected some of text, audio, visual\\)"),
    ("modalities=[]", "modalities: empty"),
    ("modalities=text", "modalities: expected a list of str, got 'text'"),
    ("device=1", "device: expected str, got 1"),
    ("device=gpu", "device: 'gpu' is not a device \\(auto, cpu, cuda, cuda:1\\)"),
    ("precision=fp8", "precision: 'fp8': use one of fp32, fp16, bf16"),
    ("launcher=mpirun -n 2", "launcher: 'mpirun -n 2': use python \\(one process\\) or torchrun \\[options\\]"),
    ("launcher=python -u", "launcher: 'python -u': use python"),
    ("threads=-1", "threads: -1: use 0 \\(torch's default, one per core\\) or a count"),
    ("threads=two", "threads: expected int, got 'two'"),
    ("launcher=srun -N 2 python", "launcher: 'srun -N 2 python': use python"),
    ("train.amp=true", "train.amp: unknown key \\(mixed precision is one top-level switch"),
    ("finetune.amp=false", "finetune.amp: unknown key \\(mixed precision is one top-level switch"),
    ("model.modalities=[text]", "model.modalities: unknown key \\(the run's modalities are one top-level list"),
    ("prepare.require=[text]", "prepare.require: unknown key \\(the run's modalities are one top-level list"),
    ("train.device=cpu", "train.device: unknown key \\(the device is one top-level switch for extract, train and evaluate"),
    ("prepare.on_missing=drop", "prepare.on_missing: unknown key \\(accepted: .*on_missing_media"),
    ("extract.text.chunksize=64", "extract.text.chunksize: unknown key \\(accepted: chunk_size, max_failed_fraction"),
    ("train.epoch=3", "train.epoch: unknown key \\(accepted: .*epochs"),
    ("train.epochs=ten", "train.epochs: expected int, got 'ten'"),
    ("model.window=2.5", "model.window: expected int, got 2.5"),
    ("train.seeds=[0, x]", "train.seeds: expected a list of int"),
    ("prepare.iemocap.dev_splt=standard", "prepare.iemocap.dev_splt: unknown key \\(accepted: dev_dialogues, dev_split"),
    ("demo.story.carry=lots", "demo.story.carry: expected float"),
    ("demo.iemocap.sesions=2", "demo.iemocap.sesions: unknown key"),
    ("baseline.C=1", "baseline.C: unknown key \\(accepted: Cs, class_weights, max_iter\\)"),
])
def test_typos_and_wrong_types_are_refused_with_the_key_named(override, message):
    with pytest.raises(ParamsError, match="params.yaml: " + message):
        load_params(REPO / "params.yaml", [override], EXTENSIONS)


@pytest.mark.parametrize("cli, args", [
    (train.main, ["--set", "trian.epochs=1"]),
    (train.main, ["--set", "train.epochs=ten"]),
    (extract.main, ["text", "--set", "extract.text.chunksize=64"]),
    (prepare.main, ["--set", "prepare.on_missing=drop"]),
    (demo.main, ["--set", "demo.seed=abc"]),
    (extract.main, ["visual", "--set", "modalities=[txt]"]),
])
def test_every_cli_refuses_before_any_work(cli, args, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)    # the repository's params.yaml; outputs would go to tmp_path
    assert cli(args + ["--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "error: params.yaml: " in err and not (tmp_path / "out").exists()


def test_demo_takes_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    assert demo.main(["--set", "demo.layout=meld", "--set", "demo.meld.dialogues={train: 3, dev: 2, test: 1}",
                      "--set", "demo.meld.turns=[2, 3]", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "MELD.Raw" / "train_sent_emo.csv").is_file()


def test_each_extractor_family_keeps_its_own_params():
    from extractors import families, section_params

    assert families("audio") == ["opensmile", "librosa", "pickled"] and families("text") == ["transformers", "pickled"]
    params = load_params(REPO / "params.yaml", ["extract.audio.name=librosa"])
    assert section_params(params["extract"]["audio"]) == {"n_mfcc": 20}
    assert section_params(load_params(REPO / "params.yaml")["extract"]["audio"]) == {"feature_set": "IS10"}
    with pytest.raises(ParamsError, match="extract.audio.params: unknown key \\(an extractor's params now sit "
                                          "under its name, e.g. extract.audio.<name>"):
        load_params(REPO / "params.yaml", ["extract.audio.params={feature_set: IS10}"])
    with pytest.raises(ParamsError, match="extract.text.opensmile: unknown key"):   # not a text family
        load_params(REPO / "params.yaml", ["extract.text.opensmile={}"], EXTENSIONS)
    # Without the registry's names (a stage that does not read extract), any mapping passes here.
    assert load_params(REPO / "params.yaml", ["extract.text.opensmile={}"])["extract"]["text"]["opensmile"] == {}
    with pytest.raises(ParamsError, match="extract.text.opensmile: unknown key"):
        load_params(REPO / "params.yaml", ["extract.text.opensmile=3"])


def test_library_entry_points_check_their_sections_too():
    with pytest.raises(ParamsError, match="model.hidden: unknown key"):
        validate({"model": {"hidden": 8}})


def test_top_level_choices_have_defaults_everywhere(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("train: {}\n")
    assert load_params(path)["modalities"] == ["text", "audio", "visual"]
    assert load_params(path)["device"] == "auto"
    assert load_params(path, ["modalities=[text]", "device=cpu"])["modalities"] == ["text"]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is present here")
@pytest.mark.parametrize("cli, args", [(extract.main, ["text"]), (train.main, []), (evaluate.main, [])])
def test_one_device_switch_reaches_every_stage(cli, args, tmp_path, capsys, monkeypatch):
    """`device: cuda` without CUDA stops extract, train and evaluate alike, before they read data
    (the manifest given here does not even exist)."""
    monkeypatch.chdir(REPO)
    assert cli(args + ["--set", "device=cuda", "--manifest", str(tmp_path / "absent"),
                       "--out", str(tmp_path / "out")]) == 1
    assert "device='cuda': no CUDA device here (use auto or cpu)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_params_file_may_hold_only_its_differences_from_a_base(tmp_path):
    (tmp_path / "recipes").mkdir()
    (tmp_path / "corpus.yaml").write_text("modalities: [text]\nmodel:\n  window: 20\n  dropout: 0.5\n"
                                          "train:\n  seeds: [0, 1, 2]\n  lr: 1.0e-4\n")
    (tmp_path / "recipes" / "r.yaml").write_text("base: ../corpus.yaml\nmodel:\n  window: 6\n"
                                                 "train:\n  seeds: [4]\n")
    params = load_params(tmp_path / "recipes" / "r.yaml", ["train.lr=2e-5"])
    assert params["model"]["window"] == 6 and params["model"]["dropout"] == 0.5   # merged key by key
    assert params["train"]["seeds"] == [4] and params["train"]["lr"] == 2e-5     # a list replaces a list
    assert params["modalities"] == ["text"] and "base" not in params
    (tmp_path / "corpus.yaml").write_text("base: recipes/r.yaml\n")
    with pytest.raises(ValueError, match="base: recipes/r.yaml leads back .*\\(a cycle\\)"):
        load_params(tmp_path / "recipes" / "r.yaml")
    (tmp_path / "recipes" / "r.yaml").write_text("base: ../absent.yaml\n")
    with pytest.raises(FileNotFoundError, match="absent.yaml: params file not found"):
        load_params(tmp_path / "recipes" / "r.yaml")
