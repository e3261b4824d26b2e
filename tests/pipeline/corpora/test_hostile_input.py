"""Hostile real-world input, on corpora the tests generate in all three layouts: media paths that
leave the corpus root are never opened, and every utterance id that appears anywhere in the source
files ends in the manifest or in errors.csv."""
import csv
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from config.prepare import PrepareOptions
from pipeline.corpora import iemocap, load_corpus, meld
from pipeline.lib import media
from pipeline.lib.manifest import Manifest, ManifestError

AUDIO = PrepareOptions(modalities=("text", "audio"))


@pytest.fixture
def opened(monkeypatch):
    """Every media path prepare's probe looks into."""
    seen: list[str] = []
    probe = media._probe_cached

    def spy(path, kind, mtime):
        seen.append(os.path.realpath(path))
        return probe(path, kind, mtime)

    monkeypatch.setattr(media, "_probe_cached", spy)
    return seen


def untouched(path: Path):
    """A check that nothing reads ``path`` (its access time, which relatime moves forward on a read
    when it is older than the modification time); None where this filesystem keeps no atime."""
    st = path.stat()
    os.utime(path, ns=(st.st_mtime_ns - 10**12, st.st_mtime_ns))
    control = path.with_name(path.name + ".control")
    control.write_bytes(b"x")
    cst = control.stat()
    os.utime(control, ns=(cst.st_mtime_ns - 10**12, cst.st_mtime_ns))
    control.read_bytes()
    if control.stat().st_atime_ns == cst.st_mtime_ns - 10**12:
        return None
    before = path.stat().st_atime_ns
    return lambda: path.stat().st_atime_ns == before


def test_media_outside_the_csv_root_is_refused_and_never_opened(tmp_path, iemocap_demo, opened):
    wav = next(iemocap_demo.rglob("sentences/wav/*/*.wav"))
    corpus = tmp_path / "corpus"
    (corpus / "clips").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    shutil.copy(wav, corpus / "clips" / "good.wav")
    secret = tmp_path / "outside" / "secret.wav"
    shutil.copy(wav, secret)
    (corpus / "clips" / "link.wav").symlink_to(secret)
    paths = {"u1": "clips/good.wav", "u2": "../outside/secret.wav",
             "u3": "clips/../../outside/secret.wav", "u4": str(secret), "u5": "clips/link.wav",
             "u6": "clips/" + "../" * 12 + str(secret).lstrip("/")}
    with open(corpus / "corpus.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["dialogue_id", "utterance_id", "speaker", "text", "label", "split", "audio_path"])
        for i, (uid, path) in enumerate(paths.items()):
            writer.writerow(["d1" if i < 3 else "d2", uid, "A", "hi", "neu", "train" if i < 3 else "test", path])
    unread = untouched(secret)
    m, log = load_corpus("csv", corpus / "corpus.csv", AUDIO)
    refused = {r["utterance_id"]: r for r in log.rows}
    assert sorted(refused) == ["u2", "u3", "u4", "u5", "u6"]
    assert all(r["problem"] == media.OUTSIDE_ROOT and "allow_outside_root" in r["detail"]
               for r in refused.values())
    assert m.table.set_index("utterance_id")["audio_path"].to_dict() == {
        "u1": "clips/good.wav", "u2": "", "u3": "", "u4": "", "u5": "", "u6": ""}
    assert str(secret.resolve()) not in opened and opened       # u1 was probed, the secret never
    if unread is not None:
        assert unread(), "the file outside the corpus root was read"
    # The manifest's own guard: an outside entry resolves to no file at all.
    raw = Manifest(m.table, "csv", str(corpus), ["neu"])
    assert raw.media_path("../outside/secret.wav") is None and raw.media_path("clips/link.wav") is None
    assert raw.media_path("clips/good.wav") == corpus / "clips" / "good.wav"
    allowed, log = load_corpus("csv", corpus / "corpus.csv",
                               PrepareOptions(modalities=("text", "audio"), allow_outside_root=True))
    assert not log.rows and allowed.media_path("../outside/secret.wav") == corpus / "../outside/secret.wav"


def test_a_symlink_leading_out_of_an_iemocap_release_is_refused(tmp_path, iemocap_demo, opened):
    root = tmp_path / iemocap_demo.name
    shutil.copytree(iemocap_demo, root)
    wav = sorted(root.rglob("sentences/wav/*/*.wav"))[0]
    secret = tmp_path / "secret.wav"
    shutil.move(wav, secret)
    wav.symlink_to(secret)
    m, log = load_corpus("iemocap", root, AUDIO, dev_dialogues=2)
    [row] = [r for r in log.rows if r["problem"] == media.OUTSIDE_ROOT]
    assert row["utterance_id"] == wav.stem and row["modality"] == "audio"
    assert str(secret) not in opened


# --- the accounting invariant ------------------------------------------------------------------

def corrupt_iemocap(root: Path) -> None:
    """A VAD bracket cut off, a latin-1 transcript line, a line no encoding decodes, a CRLF file."""
    evaluations = sorted(root.rglob("EmoEvaluation/*.txt"))
    lines = evaluations[0].read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("["))
    lines[i] = lines[i][: lines[i].rindex("[") + 3]
    evaluations[0].write_text("\r\n".join(lines) + "\r\n")
    transcripts = sorted(root.rglob("transcriptions/*.txt"))
    raw = transcripts[1].read_bytes().split(b"\n")
    raw[0] = raw[0].rstrip() + " caf\xe9".encode("latin-1")
    raw[1] = raw[1].rstrip() + b" \x81\x8d"                # undefined in cp1252 too
    transcripts[1].write_bytes(b"\n".join(raw))


def corrupt_meld(root: Path) -> None:
    """An unknown label, an extra field, ids that are not numbers, a bad timestamp, a cp1252 byte."""
    for split, name in meld.CSV_FILES.items():
        path = root / name
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if split == "train":
            table.loc[0, "Emotion"] = "boredom"
            table.loc[1, "StartTime"] = "0:0"
            table.loc[2, "Dialogue_ID"] = "seven"
        table.to_csv(path, index=False)
        if split == "train":
            data = path.read_bytes().split(b"\n")
            data[5] = data[5].replace(b",", b",\x92", 1)   # a Windows apostrophe in the text
            fields = next(csv.reader([data[6].decode()]))
            buffer = csv.StringIO()
            csv.writer(buffer).writerow([*fields, "extra"])
            data[6] = buffer.getvalue().rstrip("\r\n").encode()
            path.write_bytes(b"\n".join(data))


def write_csv_corpus(folder: Path) -> Path:
    folder.mkdir()
    path = folder / "corpus.csv"
    rows = ["dialogue_id,turn,utterance_id,speaker,text,label,split"]
    for d in range(4):
        split = ["train", "train", "dev", "test"][d]
        rows += [f"d{d},{t},d{d}_u{t},{'AB'[t % 2]},line {t},{['neu', 'ang'][t % 2]},{split}" for t in range(4)]
    rows[2] = rows[2].replace(",ang,", ",joy,")                  # unknown label
    rows[3] = rows[3].replace("d0,2,", "d0,two,")                # malformed turn
    rows[6] = rows[6] + ",extra"                                 # extra field
    rows[7] = rows[7].replace(",train", ",valid")                # unknown split
    path.write_bytes("\n".join(rows).encode() + b"\nd9,0,d9_u0,A,caf\xe9,neu,test\nd9,1,d9_u1,B,\x81,neu,test\n")
    return path


def ids_in_sources(layout: str, root: Path) -> set[str]:
    if layout == "iemocap":
        found = set()
        for path in root.rglob("*.txt"):
            if path.parent.name in ("EmoEvaluation", "transcriptions"):
                found |= set(iemocap.UTTERANCE_ID.findall(path.read_bytes().decode("latin-1")))
        return found
    if layout == "meld":
        found = set()
        for split, name in meld.CSV_FILES.items():
            for r in csv.DictReader((root / name).read_bytes().decode("latin-1").splitlines()):
                if r["Dialogue_ID"].isdigit() and str(r["Utterance_ID"]).isdigit():
                    found.add(f"{split}_dia{r['Dialogue_ID']}_utt{r['Utterance_ID']}")
        return found
    return set(re.findall(r"d\d_u\d", root.read_bytes().decode("latin-1")))


@pytest.mark.parametrize("layout", ["iemocap", "meld", "csv"])
def test_every_utterance_id_of_the_sources_is_in_the_manifest_or_the_error_log(
        layout, tmp_path, iemocap_demo, meld_demo):
    if layout == "csv":
        root = write_csv_corpus(tmp_path / "csv")
        params = {"labels": ["neu", "ang"]}
    else:
        demo = iemocap_demo if layout == "iemocap" else meld_demo
        root = tmp_path / demo.name
        shutil.copytree(demo, root, ignore=shutil.ignore_patterns("*.avi", "*.mp4", "*.wav"))
        (corrupt_iemocap if layout == "iemocap" else corrupt_meld)(root)
        params = {"dev_dialogues": 2} if layout == "iemocap" else {}
    m, log = load_corpus(layout, root, PrepareOptions(modalities=("text",)), **params)
    errors = log.table()
    accounted = set(m.table["utterance_id"]) | set(errors["utterance_id"])
    mentioned = " ".join(errors["detail"])
    lost = sorted(u for u in ids_in_sources(layout, root) if u not in accounted and u not in mentioned)
    assert not lost, f"in the sources, in neither the manifest nor errors.csv: {lost}"
    problems = set(errors["problem"])
    expected = {"iemocap": {"malformed annotation line", "line decoded with the fallback encoding",
                            "undecodable line"},
                "meld": {"unknown label", "malformed timestamp", "malformed ids", "malformed CSV row",
                         "line decoded with the fallback encoding"},
                "csv": {"unknown label", "malformed turn", "malformed CSV row", "unknown split",
                        "line decoded with the fallback encoding", "undecodable line"}}[layout]
    assert expected <= problems, expected - problems
    assert (errors.loc[errors["problem"].isin(expected), "source"].str.contains(r":\d+$")).all()
    assert np.all(m.table["text"].str.len() >= 0)


def test_labels_are_one_class_whatever_their_case_or_surrounding_spaces(tmp_path, iemocap_demo, meld_demo):
    """In every layout: 'Exc ' is 'exc', whether the label set is declared or read from the file."""
    folder = tmp_path / "csv"
    folder.mkdir()
    rows = ["dialogue_id,turn,utterance_id,speaker,text,label,split"]
    spellings = ["exc", "Exc ", " EXC", "neu", "Neu"]
    for d, split in enumerate(["train", "dev", "test"]):
        rows += [f"d{d},{t},d{d}_u{t},{'AB'[t % 2]},line {t},{spellings[t]},{split}" for t in range(5)]
    (folder / "corpus.csv").write_text("\n".join(rows) + "\n")
    read, _ = load_corpus("csv", folder / "corpus.csv", PrepareOptions(modalities=("text",)))
    assert read.labels == ["exc", "neu"] and set(read.table["label"]) == {"exc", "neu"}
    declared, _ = load_corpus("csv", folder / "corpus.csv", PrepareOptions(modalities=("text",)),
                              labels=["Neu", "EXC"])
    assert declared.labels == ["neu", "exc"] and len(declared.table) == 15
    with pytest.raises(ManifestError, match="prepare.csv.labels: 'neu' is declared twice"):
        load_corpus("csv", folder / "corpus.csv", PrepareOptions(modalities=("text",)), labels=["Neu", "neu"])

    root = tmp_path / iemocap_demo.name
    shutil.copytree(iemocap_demo, root, ignore=shutil.ignore_patterns("*.avi", "*.wav"))
    for path in root.rglob("EmoEvaluation/*.txt"):
        path.write_text(re.sub(r"\t(neu|ang|hap)\t", lambda m: f"\t{m.group(1).upper()} \t", path.read_text()))
    upper, log = load_corpus("iemocap", root, PrepareOptions(modalities=("text",)), dev_dialogues=2)
    assert {"neu", "ang"} <= set(upper.table["label"]) and set(upper.table["label"]) <= set(upper.labels)
    errors = log.table()
    outside = errors.loc[errors["problem"] == "label outside the 6-way set", "detail"]
    assert not any(label.strip().lower() in iemocap.LABELS for label in outside)   # only xxx, oth, ...

    root = tmp_path / meld_demo.name
    shutil.copytree(meld_demo, root, ignore=shutil.ignore_patterns("*.mp4"))
    for path in root.glob("*_sent_emo.csv"):
        path.write_text(path.read_text().replace(",joy,", ", JOY ,").replace(",neutral,", ",Neutral,"))
    mixed, _ = load_corpus("meld", root, PrepareOptions(modalities=("text",)))
    assert {"joy", "neutral"} <= set(mixed.table["label"]) and set(mixed.table["label"]) <= set(mixed.labels)
