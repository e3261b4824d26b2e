"""The file layout of a public corpus release, shared by the adapter that reads it
(:mod:`pipeline.corpora.meld`) and the demo generator that writes it
(:mod:`pipeline.democorpus.meld_layout`), in a module of its own so that an edit to the adapter's
reading code does not make the demo corpus stale."""
from __future__ import annotations

# MELD.Raw: one CSV per split at the root, the clips of each split in its own folder.
MELD_CSV_FILES = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
MELD_CLIP_DIRS = {"train": "train_splits", "dev": "dev_splits_complete",
                  "test": "output_repeated_splits_test"}
MELD_CSV_COLUMNS = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
                    "Utterance_ID", "Season", "Episode", "StartTime", "EndTime"]
