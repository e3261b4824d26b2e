"""Visual features: face crops through a torchvision CNN (default DenseNet-121, pooled 1024-d).

- ``backbone``: any ``torchvision.models.get_model`` name; its classification head is replaced by
  an identity so the pooled penultimate features come out (densenet121: 1024, resnet50: 2048).
- ``weights``: a torchvision weights enum (``DEFAULT``, ``IMAGENET1K_V1`` or the full
  ``DenseNet121_Weights.IMAGENET1K_V1``; downloaded by torchvision into ``~/.cache/torch``), a local
  checkpoint path (a state_dict, e.g. a FER+-trained DenseNet; its head keys are ignored), or
  ``none``: random init from ``seed`` -- said so in the identity and in the log.
- ``frames``: K frames sampled uniformly over the utterance span (centres of K equal bins);
  faces detected with OpenCV's Haar cascade in the speaker's half (centre-crop fallback, counted);
  crops resized to ``image_size`` and normalised as the weights expect (ImageNet statistics);
  frame features pooled over the K frames (``pool``: mean or max).
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from extractors.alone import forward_invariant
from extractors.base import Extractor, ExtractorError, MediaPath, UtteranceFailure, media_file, span
from extractors.media_io import VideoReader
from extractors.visual.faces import FaceCropper
from model.device import autocast, compute_identity, pick_device

log = logging.getLogger(__name__)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HEADS = ("classifier", "fc", "head", "heads")


class TorchvisionVisual(Extractor):
    name = "torchvision"
    modality = "visual"
    defaults = {"backbone": "densenet121", "weights": "DEFAULT", "seed": 0, "frames": 4,
                "image_size": 224, "pool": "mean", "batch_size": 8,
                "min_frame_fraction": 0.5, "face_detector": "mtcnn"}
    relocatable = {"weights": "weights_sha256"}   # a checkpoint file may move

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        import torch
        import torchvision

        if int(self.params["frames"]) < 1:
            raise ExtractorError(f"extract.visual.torchvision.frames={self.params['frames']}: must be >= 1")
        if not 0.0 < float(self.params["min_frame_fraction"]) <= 1.0:
            raise ExtractorError(f"extract.visual.torchvision.min_frame_fraction="
                                 f"{self.params['min_frame_fraction']}: must be in (0, 1]")
        if self.params["pool"] not in ("mean", "max"):
            raise ExtractorError(f"extract.visual.torchvision.pool={self.params['pool']!r}: use mean or max")
        backbone = str(self.params["backbone"])
        if backbone not in torchvision.models.list_models():
            raise ExtractorError(f"extract.visual.torchvision.backbone={backbone!r}: not a torchvision model "
                                 "(see torchvision.models.list_models())")
        weights = str(self.params["weights"])
        self.weights_source, self.weights_digest = weights, None
        if weights.lower() == "none":
            torch.manual_seed(int(self.params["seed"]))
            self.model = torchvision.models.get_model(backbone, weights=None)
            log.warning("visual backbone %s has RANDOM weights (seed %s): features carry no "
                        "pretrained knowledge", backbone, self.params["seed"])
        elif Path(weights).expanduser().is_file():
            self.model = torchvision.models.get_model(backbone, weights=None)
            self.weights_digest = _load_checkpoint(self.model, Path(weights).expanduser())
        else:
            enum = _weights_enum(backbone, weights)
            self.weights_source = str(enum)
            try:
                self.model = torchvision.models.get_model(backbone, weights=enum)
            except Exception as exc:  # URLError, HTTPError, ... when offline
                raise ExtractorError(
                    f"extract.visual.torchvision.weights={weights!r}: cannot load {enum} "
                    f"({type(exc).__name__}: {exc}). On a machine with internet run once: "
                    f"python -c \"import torchvision; "
                    f"torchvision.models.get_model('{backbone}', weights='{enum}')\" and copy "
                    f"~/.cache/torch/hub/checkpoints, or pass a local checkpoint path, or 'none'"
                ) from None
        self._dim = _strip_head(self.model)
        self.device = pick_device(self.device_name)
        self.model.eval().to(self.device)
        try:
            self.faces = FaceCropper(str(self.params["face_detector"]))
        except ValueError as exc:
            raise ExtractorError(f"extract.visual.torchvision.{exc}") from None
        self.reader = VideoReader()
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    @property
    def dim(self) -> int:
        return self._dim

    def identity(self) -> dict:
        import cv2
        import torch
        import torchvision

        return {"extractor": self.name, "backbone": self.params["backbone"],
                "weights": self.weights_source, "weights_sha256": self.weights_digest,
                "seed": self.params["seed"] if self.weights_source.lower() == "none" else None,
                "torchvision": torchvision.__version__, "torch": torch.__version__.split("+")[0],
                "opencv": cv2.__version__, **self.faces.detector.identity(),
                "compute": compute_identity(self.device, self.precision),
                **{k: self.params[k] for k in ("frames", "image_size", "pool", "min_frame_fraction",
                                                    "batch_size")}}

    def load(self, row: pd.Series, media_path: MediaPath) -> dict:
        import cv2

        path = media_file(row, self.modality, media_path)
        start, end = span(row, self.modality)
        if start is None or end is None:
            total = self.reader.duration(path)
            start, end = start or 0.0, end or total
            if end <= start:
                raise UtteranceFailure(f"video {path.name} has no duration")
        k = int(self.params["frames"])
        times = [start + (end - start) * (i + 0.5) / k for i in range(k)]
        size = int(self.params["image_size"])
        frames = [f for f in self.reader.frames_at(path, times) if f is not None]
        # Only frames decoded at the requested times count; too few -> the utterance fails.
        if len(frames) < float(self.params["min_frame_fraction"]) * k:
            raise UtteranceFailure(
                f"video {path.name}: {len(frames)} of {k} frames decoded at the span's times "
                f"{start:.2f}-{end:.2f} s (the span runs past the decodable video, or its data is "
                f"damaged; min_frame_fraction={self.params['min_frame_fraction']})")
        crops, found = [], 0
        for frame in frames:
            crop, is_face = self.faces.crop(frame, row["video_side"])
            crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
            found += is_face
        return {"crops": np.stack(crops), "fallbacks": len(crops) - found, "missing": k - len(frames)}

    def load_stats(self, loaded: dict) -> dict[str, int]:
        missing = {"frames_missing": int(loaded["missing"])} if loaded["missing"] else {}
        return {"face_fallbacks": int(loaded["fallbacks"]), **missing}

    def forward(self, inputs: list[dict]) -> np.ndarray:
        """Pooled frame features per utterance, in canonical batches of ``batch_size`` utterances
        with the same number of frames (a vector does not depend on its batch: :mod:`extractors.alone`)."""
        return forward_invariant(self._embed, inputs, batch_size=self.batch_size,
                                 shape_of=lambda x: x["crops"].shape, device=self.device)

    def _embed(self, inputs: list[dict], shape=None) -> np.ndarray:
        import torch

        crops = torch.from_numpy(np.concatenate([x["crops"] for x in inputs]))
        images = (crops.permute(0, 3, 1, 2).float() / 255 - self.mean) / self.std
        with torch.inference_mode(), autocast(self.device, self.precision):
            feats = self.model(images.to(self.device)).float().cpu()
        per_utterance = torch.split(feats, [len(x["crops"]) for x in inputs])   # frames found vary
        pooled = [f.mean(0) if self.params["pool"] == "mean" else f.amax(0) for f in per_utterance]
        return torch.stack(pooled).numpy().astype(np.float32)


def _weights_enum(backbone: str, name: str):
    import torchvision

    try:
        return torchvision.models.get_weight(name) if "." in name else \
            torchvision.models.get_model_weights(backbone)[name]
    except (KeyError, ValueError) as exc:
        options = ", ".join(["DEFAULT", *torchvision.models.get_model_weights(backbone).__members__])
        raise ExtractorError(f"extract.visual.torchvision.weights={name!r}: not a weights enum of {backbone} "
                             f"({options}), a checkpoint file, or none ({exc})") from None


def _load_checkpoint(model, path: Path) -> str:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    head = {k for k in state if k.split(".")[0] in HEADS}
    missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k not in head},
                                                strict=False)
    body_missing = [k for k in missing if k.split(".")[0] not in HEADS]
    if body_missing or unexpected:
        raise ExtractorError(f"extract.visual.torchvision.weights={str(path)!r}: checkpoint does not fit the "
                             f"backbone (missing {body_missing[:3]}, unexpected {unexpected[:3]})")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _strip_head(model) -> int:
    """Replace the classification head by an identity; return the feature dimension."""
    import torch

    for attr in HEADS:
        head = getattr(model, attr, None)
        if head is None:
            continue
        linear = head if isinstance(head, torch.nn.Linear) else \
            next((m for m in head.modules() if isinstance(m, torch.nn.Linear)), None)
        if linear is not None:
            setattr(model, attr, torch.nn.Identity())
            return int(linear.in_features)
    raise ExtractorError(f"cannot find the classification head of {type(model).__name__}")
