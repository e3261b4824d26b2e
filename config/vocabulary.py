"""The names params choose from that are not registries: one definition each, checked here.

The modalities and where each one's input sits in a manifest row; the class weights of every loss;
the adaptive-modality-dropout rules (paper Eq. 19-24 against the public code); the text poolings.
The modules that implement them import these names; none restates them.
"""
from __future__ import annotations

MODALITIES = ("text", "audio", "visual")
# The one modality -> manifest-column map: where each modality's input sits in a row (the text
# itself, or a media path), and for media the prefix of its span columns (``<prefix>_start_s``).
SOURCE_COLUMN = {"text": "text", "audio": "audio_path", "visual": "video_path"}
MEDIA_PREFIX = {"audio": "audio", "visual": "video"}
DEFAULT_DEVICE = "auto"   # the top-level ``device``: auto | cpu | cuda | cuda:<n>
# The top-level ``precision`` of every CUDA computation (extract, finetune, train, evaluate): fp16
# or bf16 autocast (fp16 with loss scaling when training), or fp32. The CPU computes in fp32.
PRECISIONS = ("fp32", "fp16", "bf16")
DEFAULT_PRECISION = "fp16"
# The top-level ``launcher``: what the extract and train stages' DVC commands start with. ``python``
# (one process), ``torchrun ...`` (several) or ``srun torchrun ...`` (Slurm nodes); docs/parallel.md.
# DVC reads it; no stage does.
DEFAULT_LAUNCHER = "python"
# The top-level ``threads``: torch threads per process in finetune, train, evaluate and predict.
# A CPU training's last bits depend on it (not on the core count), so it is a param: the same value
# gives the same bytes on any machine and under any launcher. 0: torch's default (one per core).
DEFAULT_THREADS = 2
LAUNCHERS = ("python", "torchrun", "srun")
# train.parallel, what several launched processes share in the train stage: one seed each (the
# same bits as one after another) | every seed's batches, a share of each one's dialogues per rank
PARALLEL_MODES = ("seeds", "dialogues")

# prepare.on_missing_media, what an utterance whose media file is missing or unreadable becomes:
#   keep - keep the utterance, blank the path; extractors give it a zero vector + mask
#   drop - remove the utterance from its dialogue and renumber the turns
#   fail - stop with an error listing every such utterance
MEDIA_POLICIES = ("keep", "drop", "fail")
CLASS_WEIGHTS = ("inverse_frequency", "none")   # see model.class_weights
Q_RULES = ("paper", "public_code", "fixed")     # dropout rate q_m: Eq. 20-24 | the public code | q_base
P_METRICS = ("eq19", "weighted_f1")             # per-modality score p_m: Eq. 19 | the public code
POOLINGS = ("cls", "mean")                      # an utterance vector from a text encoder's tokens
# The released feature-file layouts our features can be written in (extractors.feature_pickles).
FEATURE_FILE_FORMATS = ("amb_dsgdn", "mmgcn", "cosmic")


def check_choice(value: str, choices: tuple[str, ...], key: str) -> None:
    """Refuse ``value`` outside ``choices``, naming the param (``train.q_rule``, ...)."""
    if value not in choices:
        raise ValueError(f"{key}={value!r}: use one of {', '.join(choices)}")


def check_class_weights(kind: str, key: str) -> None:
    """Refuse an unknown class-weight choice, naming the param (``train.class_weights``, ...)."""
    if kind not in CLASS_WEIGHTS:
        raise ValueError(f"{key}={kind!r}: use {' or '.join(CLASS_WEIGHTS)}")


def check_modalities(value, key: str = "modalities") -> None:
    """A non-empty list of known modalities, each once."""
    unknown = [m for m in value if m not in MODALITIES]
    if unknown or not value or len(set(value)) != len(value):
        what = (f"unknown modality {unknown[0]!r}" if unknown else "empty" if not value
                else "a modality listed twice")
        raise ValueError(f"{key}: {what} in {list(value)} (expected some of {', '.join(MODALITIES)})")
