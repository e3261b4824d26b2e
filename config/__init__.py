"""The leaf package every other one imports: params, their schema and every config dataclass.

- :mod:`~config.params`: reading ``params.yaml`` with ``--set`` overrides; :mod:`~config.schema`:
  the typed schema, built from the dataclasses below and checked once before a stage works
- one module per params section: :mod:`~config.demo`, :mod:`~config.prepare`,
  :mod:`~config.finetune`, :mod:`~config.extract`, :mod:`~config.model`, :mod:`~config.train`,
  :mod:`~config.baseline`
- :mod:`~config.vocabulary`: the modalities and the other names params choose from;
  :mod:`~config.registry`: the one registry pattern (extractors, corpora, graphs, models, layouts)

It imports nothing of ``model``, ``extractors`` or ``pipeline``, and nothing heavy (the standard
library and yaml; tests/test_layers.py), so a stage's DVC deps name only the config it reads.
"""
