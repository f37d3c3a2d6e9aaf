"""Shared set-up of the Monte Carlo benchmark pools (``bench_mc.py``, ``mc_compare.py``).

Importing this module sets one BLAS/OpenMP thread per process (before numpy is imported:
the pool's processes share the cores); :func:`init` is the pool initializer that loads the
config and the Destatis frame once per worker into :data:`STATE`.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

#: per worker: ``cfg`` (validated config) and ``gv`` (read_gemeindeverzeichnis)
STATE: dict = {}


def init(config: str) -> None:
    import logging
    import warnings

    from ifm_eval import paths
    from ifm_eval.config import load_config
    from ifm_eval.reference import read_gemeindeverzeichnis

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    STATE["cfg"] = cfg = load_config(config)
    STATE["gv"] = read_gemeindeverzeichnis(paths.reference_path(cfg, "gv"))
