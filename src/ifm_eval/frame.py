"""The municipality frame: the 1,101 municipalities every stage works on (the one loader).

The ``reference`` stage parses the Destatis Gemeindeverzeichnis into
``data/processed/reference/municipalities.parquet`` (municipalities and the two
unincorporated areas); every later stage reads that file through :func:`load_frame`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def load_frame(path: str | Path) -> pd.DataFrame:
    """The incorporated municipalities of the processed reference table, sorted by AGS."""
    from ifm_eval.reference import municipalities

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"municipality frame not found: {path} (written by `ifm-eval reference`)")
    frame = municipalities(pd.read_parquet(path))
    frame["ags"] = frame["ags"].astype("str")
    return frame.sort_values("ags").reset_index(drop=True)
