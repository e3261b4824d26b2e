"""benchmarks/text_only/README.md's results table: every row is a committed metrics file, copied
to the last printed digit (rows are typed by hand after each run; this catches a stale or mistyped one)."""
import json
import re

import pytest

from pipeline.report import row as report_row
from tests.conftest import REPO

BENCH = REPO / "benchmarks" / "text_only"
FEATURES = {"MiniLM frozen": "minilm", "MiniLM fine-tuned": "minilm_ft",
            "mpnet frozen": "mpnet", "mpnet fine-tuned": "mpnet_ft"}
RUNS = {"`diff`": "diff", "`gat`": "gat", "`none`": "none", "`ar-iigcn`": "ar-iigcn",
        "logistic regression": "logreg"}


def table_rows() -> list[list[str]]:
    lines = (BENCH / "README.md").read_text().splitlines()
    return [[cell.strip().replace("**", "") for cell in line.strip("|").split("|")]
            for line in lines if re.match(r"\| (IEMOCAP|MELD) \| (MiniLM|mpnet) ", line)]


def one(mapping: dict[str, str], cell: str) -> str:
    found = [value for key, value in mapping.items() if key in cell]
    assert len(found) == 1, cell
    return found[0]


def details_file(corpus: str, features: str, run: str):
    """The mpnet rows come from a second clone (mpnet_run/README.md), the rest from the report's folder."""
    root = BENCH / "mpnet_run" if features.startswith("mpnet") else BENCH
    return root / "metrics" / corpus / f"{features}_{run}.details.json"


def test_the_table_has_every_feature_set_and_run():
    rows = table_rows()
    keys = {(row[0], one(FEATURES, row[1]), one(RUNS, row[2])) for row in rows}
    assert len(keys) == len(rows) == 36         # no row twice
    for corpus in ("IEMOCAP", "MELD"):
        for features in FEATURES.values():
            runs = {"diff", "gat", "none", "logreg"} | ({"ar-iigcn"} if features.startswith("minilm") else set())
            assert {r for c, f, r in keys if (c, f) == (corpus, features)} == runs, (corpus, features)


@pytest.mark.parametrize("row", table_rows(), ids=lambda row: "-".join(row[:3]))
def test_each_row_shows_its_metrics_file(row):
    """The cells as `python -m pipeline.report` writes them from the same details file."""
    corpus, features, run = row[0].lower(), one(FEATURES, row[1]), one(RUNS, row[2])
    details = json.loads(details_file(corpus, features, run).read_text())
    expected = report_row(run, details)
    assert row[3:6] == [expected[c] for c in ("test wa-F1", "test wa-ACC", "macro-F1")]
    assert row[6] == f"{100 * details['dev_wa_f1']['mean']:.2f}", "dev wa-F1"
