"""Percentiles of measured values (latencies): one definition for the node, bench and demo."""

from collections.abc import Iterable
import math

import numpy as np


def percentile(values: Iterable[float], q: float, empty: float = math.nan) -> float:
    """The q-th percentile (0..100, linear interpolation) of values; `empty` if there are none."""
    array = np.asarray(list(values), dtype=np.float64)
    return float(np.percentile(array, q)) if array.size else float(empty)

