import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from extractors import get_extractor
from extractors.base import ExtractorError, UtteranceFailure
from extractors.media_io import VideoReader
from tests.conftest import needs_cuda, shared_path

SMALL = {"frames": 2, "image_size": 64, "weights": "none", "face_detector": "haar"}


def video_row(path, start=np.nan, end=np.nan, side=""):
    return pd.Series({"video_path": str(path), "video_start_s": start, "video_end_s": end,
                      "video_side": side})


def test_densenet_on_the_real_iemocap_avi():
    avi = shared_path("real_media", "Ses01M_script02_2_M054_neutral.avi")
    e = get_extractor("visual", "torchvision", {**SMALL, "frames": 4}, device="cpu")
    loaded = e.load(video_row(avi), lambda p: avi)
    assert loaded["crops"].shape == (4, 64, 64, 3)
    v = e.forward([loaded])
    assert e.dim == 1024 and v.shape == (1, 1024) and np.isfinite(v).all() and v.std() > 0
    identity = e.identity()
    assert identity["weights"] == "none" and identity["seed"] == 0 and identity["backbone"] == "densenet121"


@needs_cuda
@pytest.mark.parametrize("precision,tolerance", [("fp32", 1e-2), ("fp16", 5e-2), ("bf16", 2e-1)])
def test_visual_features_on_cuda_match_the_cpu_and_name_their_compute(precision, tolerance):
    # fp32 on CUDA still differs: cuDNN convolutions use TF32 by default (the identity says cuda).
    crops = [{"crops": np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8),
              "fallbacks": 0}]
    cpu = get_extractor("visual", "torchvision", SMALL, device="cpu")
    cuda = get_extractor("visual", "torchvision", SMALL, device="cuda", precision=precision)
    features = cuda.forward(crops)
    assert features.dtype == np.float32 and np.isfinite(features).all()
    np.testing.assert_allclose(features, cpu.forward(crops), atol=tolerance * np.abs(features).max())
    assert cuda.full_identity()["compute"] == {"device": "cuda", "precision": precision}


def test_frames_are_sampled_over_the_span_on_the_speaker_side(iemocap_manifest):
    m = iemocap_manifest
    r = m.table.iloc[0]
    reader = VideoReader()
    path = m.media_path(r["video_path"])
    start, end = r["video_start_s"], r["video_end_s"]
    frames = reader.frames_at(path, [start + 0.05, (start + end) / 2, end - 0.05])
    assert len(frames) == 3 and frames[0].shape == (160, 320, 3)
    assert not np.array_equal(frames[0], frames[2])  # distinct moments of the dialogue video
    e = get_extractor("visual", "torchvision", SMALL, device="cpu")
    left = e.load(video_row(path, start, end, "left"), lambda p: path)
    right = e.load(video_row(path, start, end, "right"), lambda p: path)
    assert not np.array_equal(left["crops"], right["crops"])
    assert e.load_stats(left) == {"face_fallbacks": left["fallbacks"]}
    assert left["fallbacks"] <= 1  # the drawn faces are found by the Haar cascade


def test_weights_sources(tmp_path, monkeypatch):
    e1 = get_extractor("visual", "torchvision", SMALL, device="cpu")
    e2 = get_extractor("visual", "torchvision", SMALL, device="cpu")
    x = [{"crops": np.full((2, 64, 64, 3), 128, np.uint8), "fallbacks": 0}]
    np.testing.assert_array_equal(e1.forward(x), e2.forward(x))  # seeded random init
    # A local checkpoint (e.g. a FER+-trained DenseNet): head keys are ignored, body must fit.
    net = torchvision.models.densenet121(num_classes=8)
    torch.save(net.state_dict(), tmp_path / "ferplus.pt")
    e3 = get_extractor("visual", "torchvision", {**SMALL, "weights": str(tmp_path / "ferplus.pt")}, device="cpu")
    assert len(e3.identity()["weights_sha256"]) == 16 and e3.identity()["seed"] is None
    net.eval()
    net.classifier = torch.nn.Identity()
    images = (torch.full((2, 3, 64, 64), 128 / 255) - e3.mean) / e3.std
    with torch.no_grad():
        expected = net(images).mean(0).numpy()
    np.testing.assert_allclose(e3.forward(x)[0], expected, rtol=1e-4, atol=1e-5)
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet.pt")
    with pytest.raises(ExtractorError, match="checkpoint does not fit the backbone"):
        get_extractor("visual", "torchvision", {**SMALL, "weights": str(tmp_path / "resnet.pt")}, device="cpu")
    # A weights enum that is not cached here: a clear error naming how to provide it.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ExtractorError, match=r"weights='IMAGENET1K_V1': cannot load DenseNet121_Weights.IMAGENET1K_V1"):
        get_extractor("visual", "torchvision", {**SMALL, "weights": "IMAGENET1K_V1"}, device="cpu")
    with pytest.raises(ExtractorError, match="not a weights enum of densenet121"):
        get_extractor("visual", "torchvision", {**SMALL, "weights": "FERPLUS"}, device="cpu")
    r18 = get_extractor("visual", "torchvision", {**SMALL, "backbone": "resnet18"}, device="cpu")
    assert r18.dim == 512


def test_video_failures(tmp_path):
    e = get_extractor("visual", "torchvision", SMALL, device="cpu")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 2000)
    with pytest.raises(UtteranceFailure, match="unreadable video bad.mp4"):
        e.load(video_row(bad), lambda p: bad)
    wav = shared_path("real_media", "Ses01F_impro05_F009.wav")
    with pytest.raises(UtteranceFailure, match="no video stream"):
        e.load(video_row(wav), lambda p: wav)
    with pytest.raises(ExtractorError, match="extract.visual.torchvision.backbone='densenet999'"):
        get_extractor("visual", "torchvision", {"backbone": "densenet999"}, device="cpu")


def test_frames_are_only_taken_at_their_times(tmp_path, iemocap_demo):
    avi = next(iemocap_demo.rglob("*.avi"))
    reader = VideoReader()
    duration = reader.duration(avi)
    inside = reader.frames_at(avi, [0.2, duration / 2])
    assert all(f is not None for f in inside)
    past = reader.frames_at(avi, [duration - 0.5, duration + 2.0, duration + 3.0])
    assert past[0] is not None and past[1] is None and past[2] is None   # never the last frame again
    half = tmp_path / "half.avi"
    half.write_bytes(avi.read_bytes()[: avi.stat().st_size // 2])        # cut in half
    cut = VideoReader().frames_at(half, [0.2, duration * 0.9])
    assert cut[0] is not None and cut[1] is None


def test_utterances_past_the_decodable_video_fail_with_the_reason(tmp_path, iemocap_demo):
    avi = next(iemocap_demo.rglob("*.avi"))
    duration = VideoReader().duration(avi)
    half = tmp_path / "half.avi"
    half.write_bytes(avi.read_bytes()[: avi.stat().st_size // 2])
    e = get_extractor("visual", "torchvision", {**SMALL, "frames": 4}, device="cpu")
    loaded = e.load(video_row(half, 0.1, 1.0), lambda p: half)
    assert len(loaded["crops"]) == 4 and loaded["missing"] == 0
    for path, start, end in [(half, duration * 0.7, duration * 0.9), (avi, duration + 1, duration + 3)]:
        with pytest.raises(UtteranceFailure, match=r"0 of 4 frames decoded at the span's times"):
            e.load(video_row(path, start, end), lambda p, path=path: path)
    # Half of the frames found: kept (min_frame_fraction 0.5), pooled over those, and counted.
    loaded = e.load(video_row(avi, duration - 1.0, duration + 1.0), lambda p: avi)
    assert len(loaded["crops"]) == 2 and e.load_stats(loaded)["frames_missing"] == 2
    assert e.forward([loaded, e.load(video_row(avi, 0.1, 1.0), lambda p: avi)]).shape == (2, e.dim)


def test_a_face_across_the_midline_of_the_real_clip_is_found_on_either_side():
    from extractors.visual.faces import FaceCropper

    avi = shared_path("real_media", "Ses01M_script02_2_M054_neutral.avi")
    reader = VideoReader()
    duration = reader.duration(avi)
    frames = reader.frames_at(avi, [duration * (i + 0.5) / 6 for i in range(6)])
    cropper = FaceCropper()
    for side in ("left", "right"):
        assert all(cropper.crop(frame, side)[1] for frame in frames), side


def rotated_clip(path, quarter_turn_matrix: bool):
    """A 64x32 clip, its left quarter white; with a display matrix saying 'turn it 90 degrees
    clockwise to view' (written into the mp4 track header, as phones do)."""
    import struct

    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        for _ in range(25):
            image = np.zeros((32, 64, 3), np.uint8)
            image[:, :16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    if quarter_turn_matrix:
        data = bytearray(path.read_bytes())
        identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
        at = data.find(identity, data.find(b"tkhd"))
        data[at:at + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
        path.write_bytes(bytes(data))
    return path


def test_a_clip_with_a_display_rotation_is_read_as_the_viewer_sees_it(tmp_path):
    plain = VideoReader().frames_at(rotated_clip(tmp_path / "plain.mp4", False), [0.4])[0]
    turned = VideoReader().frames_at(rotated_clip(tmp_path / "turned.mp4", True), [0.4])[0]
    assert plain.shape == (32, 64, 3) and plain[:, :12].mean() > 200      # stored as recorded
    assert turned.shape == (64, 32, 3)                                       # upright: portrait
    assert turned[:12].mean() > 200 and turned[-24:].mean() < 50             # the white band on top


def test_a_clip_that_stops_decoding_part_way_fails_naming_what_decoded(tmp_path, monkeypatch, iemocap_demo):
    import av

    avi = next(iemocap_demo.rglob("*.avi"))
    reader = VideoReader()
    container = reader._open(avi)
    real = type(container).decode

    def fails_after_a_second(self, *args, **kwargs):
        for frame in real(self, *args, **kwargs):
            if frame.pts is not None and frame.pts * frame.time_base > 1.0:
                raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
            yield frame

    monkeypatch.setattr(type(container), "decode", fails_after_a_second)
    with pytest.raises(UtteranceFailure, match=r"stopped decoding after 1\.\d+ s \(InvalidDataError.*frames "
                                               r"decoded at 0\.20, 0\.60 of the 4 wanted \(0\.20, 0\.60, 1\.40, 1\.80 s\)"):
        reader.frames_at(avi, [0.2, 0.6, 1.4, 1.8])


def test_mtcnn_finds_the_speakers_faces_of_the_real_clip_and_names_itself():
    from extractors.visual.faces import FaceCropper

    avi = shared_path("real_media", "Ses01M_script02_2_M054_neutral.avi")
    reader = VideoReader()
    duration = reader.duration(avi)
    frames = [f for f in reader.frames_at(avi, list(np.linspace(0.5, duration - 0.5, 6))) if f is not None]
    mtcnn = FaceCropper("mtcnn")
    found = [mtcnn.crop(frame, side) for frame in frames for side in ("left", "right")]
    assert all(ok for _, ok in found)                          # every speaker, every frame
    assert all(crop.shape[0] < frames[0].shape[0] for crop, _ in found)   # a face, not the frame
    e = get_extractor("visual", "torchvision", {**SMALL, "face_detector": "mtcnn"}, device="cpu")
    identity = e.identity()
    assert identity["face_detector"] == "mtcnn" and identity["facenet_pytorch"] == "2.5.3"
    assert e.identity_hash() != get_extractor("visual", "torchvision", SMALL, device="cpu").identity_hash()
    with pytest.raises(ExtractorError, match="extract.visual.torchvision.face_detector='dlib': use one of haar, mtcnn"):
        get_extractor("visual", "torchvision", {**SMALL, "face_detector": "dlib"}, device="cpu")
