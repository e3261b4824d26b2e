"""Apply a trained model to new conversations: per-utterance predictions (CSV, JSON) and timelines.

    python -m pipeline.predict --transcript talk.srt --media talk.mp4 [--media talk.wav]
        [--speaker-side Anna=left ...] [--model data/model/checkpoints/seed_0] [--out predictions]
    python -m pipeline.predict --corpus /data/new.csv|/data/MELD.Raw|/data/IEMOCAP_full_release
        [--corpus-type auto|csv|meld|iemocap] [--context whole|labelled] [--model ...] [--out ...]

The first form reads one recorded conversation: media (video and/or audio) and a transcript with
one turn per row (CSV ``speaker,start,end,text``, SubRip or WebVTT with speaker prefixes, see
:mod:`pipeline.corpora.conversation`). The second reads a corpus in any supported layout; labels
and splits are optional (where present, labels are shown as ``gold``, never used).

``--context`` (corpus only): ``whole`` (default) predicts every turn of every conversation, each
read in the context of all its turns, those labelled outside the model's label set (IEMOCAP's
``xxx``, ``oth``, ...) and unlabelled ones included; ``labelled`` reads the corpus as the prepare
stage does (turns without a label of the set are left out, and so are not context either), so the
test dialogues' predictions equal the evaluate stage's. The two differ only around such turns:
the graph and the context encoders see a different neighbourhood.

The model's folder records its extractors and their identities: they are rebuilt with the recorded
params, and refused, naming the differing field, when the installed code, weights or libraries
cannot reproduce the model's features (``--extractor-param text.model=/models/roberta-large`` points
a param elsewhere; ``--tolerate transformers`` accepts a field knowingly). From ``--params`` (default
params.yaml, if there) it reads ``device`` and ``prepare``: encodings, ``probe_media``,
``on_missing_media`` and the corpus adapters' own sections. Writes into ``--out``:
``predictions.csv``, ``predictions.json``, ``errors.csv`` (faults in the input: each excluded row or
refused media, with file:line) and ``timeline_<dialogue>.png``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from config.params import DEFAULT_PARAMS, load_params
from config.prepare import PrepareOptions
from config.schema import checked, validate
from config.vocabulary import DEFAULT_PRECISION, DEFAULT_THREADS
from extractors import params_extensions
from extractors.store import FeatureStore
from model.distributed import use_threads
from pipeline.cli import stage_main
from pipeline.corpora import ADAPTERS
from pipeline.lib.predictor import Predictor, read_conversation, read_corpus, save

# The params sections this stage reads (validated; any other passes through unchecked).
SECTIONS = ("prepare", "extract")


def run(params: dict, model_dir: Path, out_dir: Path, *, transcript: Path | None = None,
        media: list[Path] = (), speaker_side: dict[str, str] | None = None,
        speaker_index: dict[str, int] | None = None, dialogue_id: str | None = None,
        corpus: Path | None = None, corpus_type: str = "auto", context: str = "whole",
        store: FeatureStore | None = None,
        extractor_params: dict | None = None, tolerate: list[str] = (), max_timelines: int = 20,
        progress: bool = True) -> dict:
    if (transcript is None) == (corpus is None):
        raise ValueError("give either --transcript (with --media) or --corpus")
    if context not in CONTEXTS:
        raise ValueError(f"--context {context!r}: use one of {', '.join(CONTEXTS)}")
    if context != "whole" and corpus is None:
        raise ValueError(f"--context {context}: only with --corpus (a conversation has no labels)")
    started = time.perf_counter()
    use_threads(params.get("threads", DEFAULT_THREADS))     # the model's last bits, as in evaluate
    predictor = Predictor.from_dir(model_dir, device=params.get("device", "auto"),
                                   precision=params.get("precision", DEFAULT_PRECISION),
                                   extractor_params=extractor_params, tolerate=tolerate, store=store)
    prepare = checked(params, ("prepare",), defaults=("prepare",))["prepare"]
    options = PrepareOptions.from_params(prepare, predictor.modalities, labelled=False)
    if transcript is not None:
        m, log = read_conversation(transcript, media, labels=predictor.labels, speaker_side=speaker_side,
                                   speaker_index=speaker_index, dialogue_id=dialogue_id, options=options)
        source = {"transcript": str(transcript), "media": [str(p) for p in media]}
    else:
        m, log = read_corpus(corpus, corpus_type, options, labelled=context == "labelled",
                             **_adapter_params(prepare, corpus, corpus_type))
        source = {"corpus": str(corpus), "layout": m.corpus, "context": context}
    print(f"predict: {len(m.table)} utterances in {m.table['dialogue_id'].nunique()} dialogue(s) from "
          f"{transcript or corpus}; model {model_dir} ({', '.join(predictor.modalities)}; trained on "
          f"{predictor.config.get('corpus')}); {len(log.rows)} input faults logged")
    for line in predictor.tolerated:
        print(f"  warning: identity field tolerated: {line}")
    prediction = predictor.predict(m, progress=progress)
    prediction.timings["total_s"] = time.perf_counter() - started
    written = save(prediction, predictor, log, out_dir, source, max_timelines)
    table = prediction.table
    for modality, failed in prediction.failures.items():
        if failed:
            print(f"  {modality}: {len(failed)} of {len(table)} utterances without features, predicted "
                  f"from the other modalities (reasons in the 'missing' column)")
    counts = table["predicted"].value_counts()
    print("  predicted: " + ", ".join(f"{label} {n}" for label, n in counts.items()))
    skipped = table["dialogue_id"].nunique() - len(written["timelines"])
    print(f"-> {written['csv'][0]}, {written['json'][0]}, {written['errors'][0]}, "
          f"{len(written['timelines'])} timeline(s) in {out_dir}"
          + (f" ({skipped} dialogues without one: --timelines N)" if skipped else "")
          + f"; {prediction.timings['total_s']:.1f} s")
    return {"prediction": prediction, "written": written, "errors": log}


CONTEXTS = ("whole", "labelled")


def _adapter_params(prepare: dict, corpus: Path, corpus_type: str) -> dict:
    from pipeline.corpora import detect_corpus

    return dict(prepare.get(detect_corpus(corpus) if corpus_type == "auto" else corpus_type) or {})


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} {item!r}: expected NAME=VALUE")
        out[key.strip()] = value.strip()
    return out


def _whole(value: str, flag: str) -> int:
    if not value.isdigit():
        raise ValueError(f"{flag}: {value!r} is not a whole number >= 0")
    return int(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=Path("data/model/checkpoints/seed_0"),
                        help="a model folder written by the train stage (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("predictions"))
    parser.add_argument("--transcript", type=Path, help="one conversation: .csv, .srt or .vtt")
    parser.add_argument("--media", type=Path, action="append", default=[],
                        help="the conversation's video and/or audio (repeatable)")
    parser.add_argument("--speaker-side", action="append", default=[], metavar="SPEAKER=left|right",
                        help="the half of the video frame showing a speaker (repeatable)")
    parser.add_argument("--speaker-index", action="append", default=[], metavar="SPEAKER=ID",
                        help="speaker ids as the model's training corpus numbered them (IEMOCAP: M=0, "
                             "F=1; default: order of first appearance; repeatable)")
    parser.add_argument("--dialogue-id", help="the conversation's id (default: the transcript's name)")
    parser.add_argument("--corpus", type=Path, help="a corpus: a .csv, a MELD.Raw or an IEMOCAP folder")
    parser.add_argument("--corpus-type", default="auto", choices=["auto", *ADAPTERS.names()])
    parser.add_argument("--context", default="whole", choices=CONTEXTS,
                        help="whole: every turn, unlabelled ones too (default); labelled: the turns "
                             "the prepare stage keeps, so test predictions equal evaluate's")
    parser.add_argument("--store", type=Path, default=None, help="feature store root (default: "
                        "$AMBDSGDN_FEATURE_STORE or ~/.cache/ambdsgdn-erc/features)")
    parser.add_argument("--extractor-param", action="append", default=[], metavar="MODALITY.KEY=VALUE",
                        help="replace a recorded extractor param, e.g. text.model=/models/roberta-large")
    parser.add_argument("--tolerate", action="append", default=[], metavar="FIELD",
                        help="an extractor identity field allowed to differ from the recorded one")
    parser.add_argument("--timelines", type=int, default=20, help="at most this many timeline PNGs")


def run_cli(args: argparse.Namespace) -> None:
    if args.params == DEFAULT_PARAMS and not DEFAULT_PARAMS.is_file() and not args.overrides:
        params = validate({})      # outside a checkout: every default
    else:
        params = load_params(args.params, args.overrides, params_extensions(), SECTIONS)
    extractor_params: dict[str, dict] = {}
    for key, value in _pairs(args.extractor_param, "--extractor-param").items():
        modality, sep, name = key.partition(".")
        if not sep:
            raise ValueError(f"--extractor-param {key}: expected MODALITY.KEY=VALUE")
        extractor_params.setdefault(modality, {})[name] = yaml.safe_load(value)
    run(params, args.model, args.out, transcript=args.transcript, media=args.media,
        speaker_side=_pairs(args.speaker_side, "--speaker-side"),
        speaker_index={k: _whole(v, "--speaker-index") for k, v in _pairs(args.speaker_index,
                                                                          "--speaker-index").items()},
        dialogue_id=args.dialogue_id,
        corpus=args.corpus, corpus_type=args.corpus_type, context=args.context,
        store=FeatureStore(args.store) if args.store else None, extractor_params=extractor_params,
        tolerate=args.tolerate, max_timelines=args.timelines)


main = stage_main("predict", __doc__, add_arguments, run_cli)

if __name__ == "__main__":
    sys.exit(main())
