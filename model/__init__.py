"""AMB-DSGDN (arXiv 2603.10043): encoder, graph, diffrgcn, modality_dropout, classifier, data, training.

:data:`MODELS` names the trainable conversation models (a checkpoint records its entry); each class
declares ``name`` and ``config_class``. The bottom layer: nothing here imports ``extractors`` or
``pipeline``.
"""
from model.registry import Registry

MODELS = Registry("model.name", "model")
MODELS.register("ambdsgdn", "model.ambdsgdn:AMBDSGDN")
