"""The verdict rule of PROTOCOLS.md, shared by simsiam_mini.py (which writes it into each run's
JSON) and parity.py (which derives it again from the stored metrics). No torch import here, so
`parity.py --report-only` runs without PyTorch."""

import math


def verdict(diverged, zstd, mo, mr):
    """diverged if the run diverged or a metric is NaN/Inf; collapsed if z_std·√d < 0.1;
    partial-collapse if m_o > m_r; else trained."""
    if diverged or not all(math.isfinite(v) for v in (zstd, mo, mr)):
        return "diverged"
    if zstd < 0.1:
        return "collapsed"
    if mo > mr:
        return "partial-collapse"
    return "trained"
