"""Random numbers that reproduce R's default stream after ``set.seed(seed)``.

R HonestDiD draws simulation noise twice: the least-favourable critical value of the
conditional-LF hybrid (``mvtnorm::rmvnorm`` after ``set.seed(0)``) and, for the FLCI, a simulated
folded-normal quantile (``rnorm(1e6)`` after ``set.seed(0)``). To make results comparable with R
number for number, this module re-implements R's default generator:

* ``set.seed(s)`` (R's ``RNG_Init``): the seed is scrambled by 50 steps of the linear congruential
  map ``s -> 69069 s + 1 (mod 2^32)``; the next 625 values fill ``.Random.seed``, the first being
  the Mersenne-Twister position (set to 624, i.e. "regenerate"), the other 624 the MT19937 key.
* ``unif_rand()``: the MT19937 32-bit output times ``2.3283064365386963e-10``, moved into (0, 1).
* ``norm_rand()`` ("Inversion"): ``u = floor(2^27 U1) + U2``, ``qnorm(u / 2^27)``.
* ``mvtnorm::rmvnorm(n, sigma)`` (method "eigen"): an ``n x p`` matrix of such normals filled row
  by row, times the symmetric square root ``V diag(sqrt(max(lambda, 0))) V'`` of ``sigma``.

The MT19937 recursion itself is numpy's (identical algorithm); ``qnorm`` is
:func:`scipy.special.ndtri` (agrees with R's AS 241 to about 1e-16).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import ndtri

_TWO_NEG32 = 2.3283064365386963e-10
_I2_32M1 = 2.328306437080797e-10  # 1 / (2^32 - 1), R's fixup() constant
_BIG = 134217728.0  # 2^27


def _mt_generator(seed: int) -> np.random.MT19937:
    s = int(seed) & 0xFFFFFFFF
    for _ in range(50):
        s = (69069 * s + 1) & 0xFFFFFFFF
    state = np.empty(625, dtype=np.uint64)
    for j in range(625):
        s = (69069 * s + 1) & 0xFFFFFFFF
        state[j] = s
    gen = np.random.MT19937(0)
    gen.state = {
        "bit_generator": "MT19937",
        "state": {"key": state[1:].astype(np.uint32), "pos": 624},
    }
    return gen


def r_runif(seed: int, n: int) -> np.ndarray:
    """``set.seed(seed); runif(n)`` of R (default Mersenne-Twister kind)."""
    raw = _mt_generator(seed).random_raw(n).astype(np.float64)
    u = raw * _TWO_NEG32
    u[u <= 0.0] = 0.5 * _I2_32M1
    u[1.0 - u <= 0.0] = 1.0 - 0.5 * _I2_32M1
    return u


def r_rnorm(seed: int, n: int) -> np.ndarray:
    """``set.seed(seed); rnorm(n)`` of R (Mersenne-Twister, normal.kind "Inversion")."""
    u = r_runif(seed, 2 * n).reshape(n, 2)
    v = (np.floor(_BIG * u[:, 0]) + u[:, 1]) / _BIG
    return ndtri(v)


def symmetric_sqrt(sigma: np.ndarray) -> np.ndarray:
    """``V diag(sqrt(max(lambda, 0))) V'``, the root ``mvtnorm::rmvnorm`` uses (method eigen)."""
    lam, vec = np.linalg.eigh((sigma + sigma.T) / 2.0)
    return (vec * np.sqrt(np.clip(lam, 0.0, None))) @ vec.T


@lru_cache(maxsize=16)
def _rnorm_cached(seed: int, n: int) -> np.ndarray:
    out = r_rnorm(seed, n)
    out.flags.writeable = False
    return out


def r_rmvnorm(seed: int, n: int, sigma: np.ndarray) -> np.ndarray:
    """``set.seed(seed); mvtnorm::rmvnorm(n, sigma = sigma)`` (mean zero, method "eigen")."""
    p = sigma.shape[0]
    z = _rnorm_cached(int(seed), n * p).reshape(n, p)  # byrow = TRUE
    return z @ symmetric_sqrt(sigma)
