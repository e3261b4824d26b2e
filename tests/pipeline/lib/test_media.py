from pathlib import Path

from config.prepare import PrepareOptions
from pipeline.corpora import load_corpus
from pipeline.lib import media
from tests.conftest import shared_path


def test_real_iemocap_media_pass_the_checks(tmp_path):
    real = shared_path("real_media")
    csv = tmp_path / "real.csv"
    csv.write_text(
        "dialogue_id,utterance_id,speaker,label,split,audio_path,video_path\n"
        f"Ses01F_impro05,Ses01F_impro05_F009,F,ang,test,{real}/Ses01F_impro05_F009.wav,\n"
        f"Ses03M_impro06,Ses03M_impro06_F016,F,sad,test,{real}/Ses03M_impro06_F016.wav,\n"
        f"Ses01M_script02_2,Ses01M_script02_2_M054,M,neu,test,,{real}/Ses01M_script02_2_M054_neutral.avi\n")
    m, log = load_corpus("csv", csv, PrepareOptions(modalities=("audio", "visual"), on_missing_media="keep",
                                                             allow_outside_root=True))
    problems = log.table().set_index(["utterance_id", "modality"])["problem"].to_dict()
    # Each file passes for what it holds; each gap is reported, nothing silently lost.
    assert problems == {("Ses01F_impro05_F009", "visual"): "missing file",
                        ("Ses03M_impro06_F016", "visual"): "missing file",
                        ("Ses01M_script02_2_M054", "audio"): "missing file"}
    assert (m.table["audio_path"] != "").sum() == 2 and (m.table["video_path"] != "").sum() == 1


def test_probe_reasons(tmp_path):
    avi = shared_path("real_media", "Ses01M_script02_2_M054_neutral.avi")
    assert media.probe(avi, "video") is None
    assert media.probe(avi, "audio") == (media.NO_AUDIO, str(avi))  # the real clip has no audio track
    assert media.probe(tmp_path / "none.wav", "audio") == (media.MISSING, str(tmp_path / "none.wav"))
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert media.probe(empty, "video")[0] == media.EMPTY
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF1234WAVEnot really")
    assert media.probe(garbage, "audio")[0] == media.UNREADABLE
    assert media.probe(garbage, "audio", decode=False) is None  # existence-only check
    (tmp_path / "clip.mp4").write_bytes(Path(avi).read_bytes()[:600])
    assert media.probe(tmp_path / "clip.mp4", "video")[0] in (media.UNREADABLE, media.EMPTY)
