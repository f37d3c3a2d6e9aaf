import pandas as pd
import pytest

from ifm_eval.lineage import COLUMNS, Lineage


def test_write_and_balance(tmp_path):
    lin = Lineage("ingest")
    lin.add("posts", "read", 10, 10, "read", "all rows read")
    lin.add("posts", "drop_outside_window", 10, 7, "drop", "start before 2015-01")
    lin.write(tmp_path / "l.csv")
    df = pd.read_csv(tmp_path / "l.csv")
    assert list(df.columns) == COLUMNS
    assert df["n_affected"].tolist() == [0, 3]


def test_unbalanced_record_rejected(tmp_path):
    lin = Lineage("ingest")
    lin.add("posts", "recode", 10, 7, "recode", "claims to touch one row", n_affected=1)
    with pytest.raises(ValueError, match="only 1 accounted for"):
        lin.write(tmp_path / "l.csv")
