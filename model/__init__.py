"""AMB-DSGDN (arXiv 2603.10043): encoder, graph, diffrgcn, modality_dropout, classifier, data, training.

:data:`MODELS` names the trainable conversation models (a checkpoint records its entry); each class
declares ``name`` and ``config_class``. Below ``extractors`` and ``pipeline``: it imports
nothing of them (only :mod:`config`).
"""
from config.registry import Registry

MODELS = Registry("model.name", "model")
MODELS.register("ambdsgdn", "model.ambdsgdn:AMBDSGDN")
