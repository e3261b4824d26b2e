"""One registry pattern for everything params choose by name: extractors, corpus adapters, demo
layouts, graph variants and models.

A :class:`Registry` maps a name to a target: the object itself, or a ``"module:attribute"`` string
imported on first use (so torch or transformers load only when that entry is chosen). A name
registered twice is refused at once, i.e. at import. :meth:`Registry.names` feeds CLI help and error
messages; an unknown name is refused with the param it came from and the registered names.

It lives in :mod:`config`, the leaf package (it imports nothing of the project), so every package
can use it::

    GRAPHS = Registry("model.graph", "graph variant")

    @GRAPHS.register("diff")
    def differential(config): ...

    EXTRACTORS.register("opensmile", "extractors.audio.opensmile_functionals:OpenSmileAudio")
"""
from __future__ import annotations

import importlib
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> target, for the param ``param`` (used in messages: ``model.graph``)."""

    def __init__(self, param: str, what: str, error: type[Exception] = ValueError) -> None:
        self.param, self.what, self.error = param, what, error
        self._targets: dict[str, T | str] = {}
        self._loaded: dict[str, T] = {}

    def register(self, name: str, target: T | str | None = None) -> Any:
        """Register ``target`` under ``name``; without ``target``, a decorator that registers what
        it decorates (and returns it unchanged)."""
        if target is None:
            def decorator(obj: T) -> T:
                self.register(name, obj)
                return obj
            return decorator
        if name in self._targets:
            raise ValueError(f"{self.param}: {self.what} {name!r} is registered twice")
        if isinstance(target, str) and ":" not in target:
            raise ValueError(f"{self.param}: {name!r} -> {target!r}: a lazy target is 'module:attribute'")
        self._targets[name] = target
        return target

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._targets)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def target(self, name: str) -> T | str:
        """What ``name`` was registered with, not imported (a lazy entry stays a string)."""
        self._check(name)
        return self._targets[name]

    def get(self, name: str) -> T:
        """The target of ``name``, imported on first use."""
        target = self.target(name)
        if not isinstance(target, str):
            return target
        if name not in self._loaded:
            module, _, attribute = target.partition(":")
            self._loaded[name] = getattr(importlib.import_module(module), attribute)
        return self._loaded[name]

    def _check(self, name: str) -> None:
        if name not in self._targets:
            raise self.error(f"{self.param}: unknown {self.what} {name!r} "
                             f"(registered: {', '.join(self._targets)})")

