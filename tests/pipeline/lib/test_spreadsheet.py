"""CSV injection: the CSVs people open in spreadsheets (errors, predictions) never hold a text cell
a spreadsheet would run; numbers and the manifest stay exact."""
import pandas as pd

from pipeline.lib import manifest
from pipeline.lib.errorlog import ErrorLog
from pipeline.lib.predictions import write_csv
from pipeline.lib.spreadsheet import neutralised


def test_cells_a_spreadsheet_would_run_are_written_as_text(tmp_path):
    table = pd.DataFrame({"text": ["=HYPERLINK(\"http://x\")", "+1", "-2 said", "@SUM(A1)", "\t=1", "fine", ""],
                          "score": [-1.5, 2.0, -3.0, 0.0, 1.0, 0.5, 0.25]})
    safe = neutralised(table)
    assert safe["text"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2 said", "'@SUM(A1)", "'\t=1",
                                     "fine", ""]
    assert safe["score"].tolist() == table["score"].tolist()            # numbers untouched
    assert table["text"].iat[0] == "=HYPERLINK(\"http://x\")"            # the caller's table too
    back = pd.read_csv(write_csv(tmp_path / "p.csv", table), keep_default_na=False)
    assert back["text"].iat[0].startswith("'=") and back["score"].iat[0] == -1.5


def test_errors_csv_is_neutralised_and_the_manifest_is_exact(tmp_path, iemocap_manifest):
    m = iemocap_manifest
    m.table.loc[0, "text"] = "=1+1"
    log = ErrorLog()
    log.add(split="train", dialogue_id="d1", utterance_id="u1", problem="unknown label",
            detail="=cmd|' /C calc'!A0", action="utterance excluded", source="corpus.csv:2")
    manifest.write(m, log.table(), tmp_path)
    assert pd.read_csv(tmp_path / manifest.ERRORS_FILE)["detail"].iat[0] == "'=cmd|' /C calc'!A0"
    assert manifest.read(tmp_path).table.loc[0, "text"] == "=1+1"
