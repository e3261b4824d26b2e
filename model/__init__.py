"""The conversation models: AMB-DSGDN (arXiv 2603.10043: encoder, graph, diffrgcn,
modality_dropout, classifier) and AR-IIGCN (arXiv 2312.16778: ar_iigcn, tri_gan, contrastive), with
their data, training engine and trainers.

:data:`MODELS` names the trainable conversation models (a checkpoint records its entry); each class
declares ``name``, ``config_class`` and, where it has its own optimiser steps, ``trainee``
(``"module:Class"`` of its :class:`model.engine.Trainee`; AMB-DSGDN's by default). Below
``extractors`` and ``pipeline``: it imports nothing of them (only :mod:`config`).
"""
from config.registry import Registry

MODELS = Registry("model.name", "model")
MODELS.register("ambdsgdn", "model.ambdsgdn:AMBDSGDN")
MODELS.register("ar_iigcn", "model.ar_iigcn:ARIIGCN")
