import sys

import pytest

from config.registry import Registry


def test_register_get_names_and_decorator():
    reg = Registry("demo.thing", "thing")

    @reg.register("b")
    def build_b():
        return "b"

    reg.register("a", len)
    assert reg.names() == ["b", "a"] and "a" in reg and "c" not in reg
    assert reg.get("b") is build_b and reg.get("a") is len


def test_a_name_registered_twice_is_refused():
    reg = Registry("demo.thing", "thing")
    reg.register("a", len)
    with pytest.raises(ValueError, match="demo.thing: thing 'a' is registered twice"):
        reg.register("a", max)


def test_unknown_name_names_the_param_and_the_choices_with_the_given_error():
    class ThingError(ValueError):
        pass

    reg = Registry("demo.thing", "thing", ThingError)
    reg.register("a", len)
    reg.register("b", max)
    with pytest.raises(ThingError, match=r"demo.thing: unknown thing 'c' \(registered: a, b\)"):
        reg.get("c")


def test_lazy_target_is_imported_on_first_get_only():
    reg = Registry("demo.thing", "thing")
    reg.register("wave", "wave:open")           # a stdlib module nothing here has imported
    sys.modules.pop("wave", None)
    assert reg.target("wave") == "wave:open" and "wave" not in sys.modules
    opened = reg.get("wave")
    assert "wave" in sys.modules and opened is sys.modules["wave"].open
    assert reg.target("wave") == "wave:open"    # the recorded target stays as given
    with pytest.raises(ValueError, match="'module:attribute'"):
        reg.register("bad", "no_colon")


def test_the_projects_registries():
    from extractors import EXTRACTORS, families
    from model import MODELS
    from model.ambdsgdn import AMBDSGDN, GRAPHS
    from pipeline.corpora import ADAPTERS
    from pipeline.democorpus import LAYOUTS

    assert EXTRACTORS.names() == ["transformers", "opensmile", "librosa", "torchvision", "pickled"]
    assert families("visual") == ["torchvision", "pickled"]
    assert ADAPTERS.names() == ["iemocap", "meld", "csv", "pickled"]
    assert LAYOUTS.names() == ["iemocap", "meld"]
    assert GRAPHS.names() == ["diff", "gat", "none"]
    assert MODELS.get("ambdsgdn") is AMBDSGDN
