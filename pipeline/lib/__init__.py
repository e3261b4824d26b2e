"""Library code the stages wire together; nothing here parses a command line.

The stages (``python -m pipeline.<stage>``) are the modules directly in ``pipeline/``, each a thin
CLI over these and the subpackages (``corpora``: corpus adapters, ``democorpus``: the demo corpus):

- :mod:`~pipeline.lib.manifest`: the normalized manifest (schema, reader, writer; its modality
  vocabulary is :mod:`config.vocabulary`'s)
- :mod:`~pipeline.lib.media`: probing media files; :mod:`~pipeline.lib.errorlog`: ``errors.csv``;
  :mod:`~pipeline.lib.releases`: the public releases' file layouts (adapters and the demo)
- :mod:`~pipeline.lib.inputs`: manifest + checked feature caches + splits, for train / evaluate /
  baseline
- :mod:`~pipeline.lib.runs`: the train stage's checkpoints and curves (writer, readers, scoring)
- :mod:`~pipeline.lib.metrics`: the metrics files (one builder); :mod:`~pipeline.lib.plots`: PNGs
"""
