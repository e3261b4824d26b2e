"""One typed schema for every params section, read from the dataclasses of :mod:`config`.

Each section's accepted keys, types and defaults come from one place: its dataclass
(``ModelConfig``, ``TrainConfig``, ``PrepareOptions``, ``StoryParams``, ...). :func:`validate`
checks a params mapping before any work: an unknown section or key, or a value of the wrong type,
raises :class:`ParamsError` naming the dotted key (``train.epochs``) and the accepted keys; present
sections get their defaults filled in.

Two kinds of keys are named by registries that live above this package: a corpus adapter's own
params (``prepare.<corpus>``) and an extractor family's (``extract.<modality>.<family>``). The
schema accepts them as mappings; the stage that owns the registry passes ``extensions`` (the
registered names, and for adapters their params) so that a misspelt one is refused too. This
package imports nothing of the project above it, and no torch.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from config import vocabulary
from config.vocabulary import (
    DEFAULT_DEVICE,
    DEFAULT_LAUNCHER,
    DEFAULT_PRECISION,
    DEFAULT_THREADS,
    LAUNCHERS,
    MODALITIES,
    PARALLEL_MODES,
    PRECISIONS,
)

REQUIRED = object()   # an extra key without a default (absent stays absent)


class ParamsError(ValueError):
    """A params file or override that does not fit the schema."""


@dataclass
class Section:
    """Accepted keys -> type hint, their defaults, and nested sections validated further."""

    keys: dict[str, Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    children: dict[str, Section] = field(default_factory=dict)
    any_key: Section | None = None        # a mapping of free names, each a ``Section`` (corpora)
    # Keys named by a registry above this package (adapters, extractor families): any mapping,
    # or with ``extensions`` for this section's path, one of the names given (checked against it).
    open: bool = False
    moved: dict[str, str] = field(default_factory=dict)   # old key -> where it went (for the error)

    def accepted(self) -> str:
        return ", ".join(sorted(self.keys)) or "none"


def from_dataclass(cls: type, exclude: Sequence[str] = (), extra: Mapping[str, Any] | None = None,
                   children: Mapping[str, Section] | None = None) -> Section:
    """The fields of ``cls`` (minus ``exclude``), their annotations and defaults."""
    hints = typing.get_type_hints(cls)
    keys, defaults = {}, {}
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        keys[f.name] = hints[f.name]
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    for name, (hint, default) in (extra or {}).items():
        keys[name] = hint
        if default is not REQUIRED:
            defaults[name] = default
    return Section(keys, defaults, dict(children or {}))


def from_defaults(defaults: Mapping[str, Any]) -> Section:
    """Keys typed by their default values (an extractor's declared params; None: any type)."""
    kinds = {bool: bool, int: int, float: float, str: str, list: list, tuple: list, dict: dict}
    return Section({k: kinds.get(type(v), Any) for k, v in defaults.items()}, dict(defaults))


def from_signature(fn: Callable, skip: Sequence[str]) -> Section:
    """The keyword parameters of ``fn`` (minus ``skip``), their annotations and defaults."""
    hints = typing.get_type_hints(fn)
    keys, defaults = {}, {}
    for name, p in inspect.signature(fn).parameters.items():
        if name in skip or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        keys[name] = hints.get(name, Any)
        if p.default is not inspect.Parameter.empty:
            defaults[name] = p.default
    return Section(keys, defaults)


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _fits(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a type hint (ints are accepted for floats, never bools)."""
    if hint is Any or hint is object:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint in (dict, Mapping) or origin in (dict, Mapping):
        return isinstance(value, dict)
    if hint in (list, tuple, Sequence) or origin in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        item = args[0] if args and args[0] is not Ellipsis else Any
        return all(_fits(v, item) for v in value)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if hint is type(None):
        return "null"
    if origin in (list, tuple, Sequence) or hint in (list, tuple, Sequence):
        return f"a list of {_type_name(args[0])}" if args and args[0] is not Ellipsis else "a list"
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return "a mapping"
    return getattr(hint, "__name__", str(hint))


def _coerce(value: Any, hint: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string: accept such numbers where a float is expected."""
    if isinstance(value, str) and _fits(1.5, hint) and not _fits(value, hint):
        try:
            return float(value)
        except ValueError:
            return value
    return value


# A section path ("prepare", "extract.audio") -> the registered names of its open keys -> their
# params (None: any mapping, checked by the registered object itself).
Extensions = Mapping[str, Mapping[str, "Section | None"]]


def validate_section(spec: Section, value: Any, path: str, extensions: Extensions | None = None) -> dict:
    """``value`` checked against ``spec``; returns a copy with the defaults filled in."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ParamsError(f"{path}: expected a section of keys, got {_describe(value)}")
    if spec.any_key is not None:
        return {name: validate_section(spec.any_key, v, f"{path}.{name}", extensions)
                for name, v in value.items()}
    named = (extensions or {}).get(path) if spec.open else None
    unknown = sorted(set(value) - set(spec.keys) - (set(named) if named is not None else set()))
    if spec.open and named is None:     # a moved key is refused even where any mapping passes
        unknown = [k for k in unknown if not isinstance(value[k], dict) or k in spec.moved]
    if unknown:
        hint = f"{spec.moved[unknown[0]]}; " if unknown[0] in spec.moved else ""
        accepted = sorted({*spec.keys, *(named or ())}) if named is not None else None
        raise ParamsError(f"{path}.{unknown[0]}: unknown key ({hint}accepted: "
                          f"{', '.join(accepted) if accepted else spec.accepted()})")
    out = {**spec.defaults, **value}
    for key, v in value.items():
        if key in spec.children:
            out[key] = validate_section(spec.children[key], v, f"{path}.{key}", extensions)
        elif key not in spec.keys:      # an open key: a registered name's params
            sub = (named or {}).get(key)
            if not isinstance(v, dict) and v is not None:
                raise ParamsError(f"{path}.{key}: expected a section of keys, got {_describe(v)}")
            out[key] = validate_section(sub, v, f"{path}.{key}", extensions) if sub else dict(v or {})
        else:
            out[key] = v = _coerce(v, spec.keys[key])
            if not _fits(v, spec.keys[key]):
                raise ParamsError(f"{path}.{key}: expected {_type_name(spec.keys[key])}, got {_describe(v)}")
    return out


def extract_section(modality: str) -> Section:
    """``extract.<modality>``: the stage's keys + one params mapping per registered family (open)."""
    from config.extract import ExtractSection

    spec = from_dataclass(ExtractSection)
    spec.open = True
    spec.moved["params"] = (f"an extractor's params now sit under its name, e.g. "
                            f"extract.{modality}.<name>: {{...}}")
    return spec


MODALITIES_MOVED = ("the run's modalities are one top-level list: `modalities: [text, audio]` "
                    "(prepare checks, extract computes and the model fuses exactly those)")
DEVICE_MOVED = "the device is one top-level switch for extract, train and evaluate: `device: auto`"
PRECISION_MOVED = ("mixed precision is one top-level switch for extract, finetune, train and evaluate: "
                   "`precision: fp16` (fp32 | fp16 | bf16; CUDA only)")


def moved(section: Section, **hints: str) -> Section:
    section.moved.update(hints)
    return section


def top_level() -> Section:
    """The keys that are not sections: the choices every stage follows."""
    return Section({"modalities": list[str], "device": str, "precision": str, "launcher": str,
                    "threads": int},
                   {"modalities": list(MODALITIES), "device": DEFAULT_DEVICE, "precision": DEFAULT_PRECISION,
                    "launcher": DEFAULT_LAUNCHER, "threads": DEFAULT_THREADS})


def check_modalities(value: list[str]) -> None:
    try:
        vocabulary.check_modalities(value)
    except ValueError as exc:
        raise ParamsError(str(exc)) from None


def check_device(value: str) -> None:
    """auto | cpu | cuda | cuda:<n> (whether CUDA is there is checked where the device is used)."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise ParamsError(f"device: {value!r} is not a device (auto, cpu, cuda, cuda:1)")


def check_launcher(value: str) -> None:
    """``python``, ``torchrun [options]`` or ``srun [options] torchrun [options]`` (the program the
    DVC command runs the stage with, followed there by ``-m pipeline.<stage>``)."""
    words = value.split()
    if (not words or words[0] not in LAUNCHERS or (words[0] == "python" and len(words) > 1)
            or (words[0] == "srun" and "torchrun" not in words)):
        raise ParamsError(f"launcher: {value!r}: use python (one process) or torchrun [options], "
                          f"e.g. 'torchrun --standalone --nproc_per_node 2', or srun [options] "
                          f"torchrun [options] (docs/parallel.md)")


# Each section's schema is built from its own module of this package, imported only when a stage
# validates that section: a stage's import trace (its DVC deps) names the config files it reads.
def _demo() -> Section:
    from config.demo import DemoParams, IemocapDemo, MeldDemo, StoryParams

    return from_dataclass(DemoParams, children={
        "story": from_dataclass(StoryParams), "iemocap": from_dataclass(IemocapDemo),
        "meld": from_dataclass(MeldDemo)})


def _prepare() -> Section:
    from config.prepare import NOT_PARAMS, PrepareOptions

    prepare = from_dataclass(PrepareOptions, exclude=NOT_PARAMS, extra={
        # corpus and root: checked by the stage; each adapter's params: an open key (see above)
        "corpus": (str, "auto"), "root": (str | None, None)})
    prepare.open = True
    return moved(prepare, require=MODALITIES_MOVED)


def _extract() -> Section:
    return Section({m: dict for m in MODALITIES}, children={m: extract_section(m) for m in MODALITIES})


def _model() -> Section:
    """``model``: ``name`` (ambdsgdn | ar_iigcn), AMB-DSGDN's params at the top (the default
    model), each other model's under its name (``model.ar_iigcn.*``)."""
    from config.ar_iigcn import ARIIGCNConfig
    from config.model import ModelConfig

    data = ("input_dims", "num_classes")
    section = from_dataclass(ModelConfig, exclude=data,
                             extra={"name": (str, "ambdsgdn"), "ar_iigcn": (dict, {})},
                             children={"ar_iigcn": from_dataclass(ARIIGCNConfig, exclude=data)})
    return moved(section, modalities=MODALITIES_MOVED)


def _train() -> Section:
    from config.train import TrainConfig

    section = from_dataclass(TrainConfig, exclude=("device", "precision"),
                             extra={"seeds": (list[int], [0]), "parallel": (str, PARALLEL_MODES[0])})
    return moved(section, device=DEVICE_MOVED, amp=PRECISION_MOVED)


def _baseline() -> Section:
    from config.baseline import BaselineConfig

    return from_dataclass(BaselineConfig)


def _finetune() -> Section:
    from config.finetune import FinetuneConfig

    section = from_dataclass(FinetuneConfig, exclude=("precision",),
                             extra={"enabled": (bool, False), "crossfit_folds": (int, 0)})
    return moved(section, amp=PRECISION_MOVED)


def _export() -> Section:
    from config.export import ExportConfig

    return from_dataclass(ExportConfig)


SECTIONS: dict[str, Callable[[], Section]] = {
    "demo": _demo, "prepare": _prepare, "extract": _extract, "model": _model, "train": _train,
    "baseline": _baseline, "finetune": _finetune, "export": _export}


def schema(names: Sequence[str] | None = None) -> dict[str, Section]:
    """The params sections the stages read (``names``: only those)."""
    return {name: SECTIONS[name]() for name in (SECTIONS if names is None else names)}


class Params(dict):
    """A params mapping that :func:`validate` returned: the top-level choices and the sections in
    :attr:`sections` checked, defaults filled in. A stage validates once, in its CLI
    (:func:`config.params.load_params`); its library code takes a ``Params`` as it is and checks
    a plain mapping (a library caller's) first, through :func:`checked`."""

    sections: frozenset[str] = frozenset()


def checked(params: Mapping[str, Any], sections: Sequence[str], extensions: Extensions | None = None,
            defaults: Sequence[str] = ()) -> Params:
    """``params`` if :func:`validate` already checked ``sections`` in it, else validated now.
    ``defaults``: sections that get all their defaults when absent (a library caller's shorthand)."""
    missing = [name for name in defaults if params.get(name) is None]
    if isinstance(params, Params) and set(sections) <= params.sections and not missing:
        return params
    return validate({**params, **{name: {} for name in missing}}, "params", extensions, sections)


def validate(params: Mapping[str, Any], source: str = "params", extensions: Extensions | None = None,
             sections: Sequence[str] | None = None) -> Params:
    """The params mapping checked key by key: top-level choices (``modalities``, ``device``;
    defaults filled in) and sections (present ones get their defaults). ``sections``: the ones a
    stage reads (default all); any other must still be a known section, and is passed through.
    ``extensions``: the registered names (and params) of the open keys, from the stage that owns
    their registry."""
    top = top_level()
    unknown = sorted(set(params) - set(SECTIONS) - set(top.keys))
    if unknown:
        raise ParamsError(f"{source}: {unknown[0]}: unknown section or key "
                          f"(accepted: {', '.join(sorted([*top.keys, *SECTIONS]))})")
    read = schema([name for name in params if name in SECTIONS and (sections is None or name in sections)])
    try:
        out = {}
        for key, hint in top.keys.items():
            if key not in params and key not in top.defaults:
                continue
            out[key] = value = _coerce(params[key] if key in params else top.defaults[key], hint)
            if not _fits(value, hint):
                raise ParamsError(f"{key}: expected {_type_name(hint)}, got {_describe(value)}")
        check_modalities(out["modalities"])
        check_device(out["device"])
        check_launcher(out["launcher"])
        if out["threads"] < 0:
            raise ParamsError(f"threads: {out['threads']}: use 0 (torch's default, one per core) or a count")
        if out["precision"] not in PRECISIONS:
            raise ParamsError(f"precision: {out['precision']!r}: use one of {', '.join(PRECISIONS)}")
        for name, value in params.items():
            if name in read:
                out[name] = validate_section(read[name], value, name, extensions)
            elif name in SECTIONS:
                if value is not None and not isinstance(value, dict):
                    raise ParamsError(f"{name}: expected a section of keys, got {_describe(value)}")
                out[name] = value
    except ParamsError as exc:
        raise ParamsError(f"{source}: {exc}") from None
    result = Params(out)
    result.sections = frozenset(SECTIONS if sections is None else sections)
    return result
