"""Verdict rules and thresholds."""

from __future__ import annotations

import pytest

from spectra.verdict import DEFAULT, Thresholds, Verdict, decide

T = Thresholds(identify=0.9, mixture=0.85, inconclusive=0.6)


@pytest.mark.parametrize(
    ("best", "mixture", "n", "expected"),
    [
        (0.95, None, 1, Verdict.IDENTIFIED),
        (0.90, None, 1, Verdict.IDENTIFIED),
        (0.89, None, 1, Verdict.INCONCLUSIVE),
        (0.60, None, 1, Verdict.INCONCLUSIVE),
        (0.59, None, 1, Verdict.NO_MATCH),
        (0.70, 0.86, 2, Verdict.MIXTURE),
        (0.95, 0.80, 2, Verdict.INCONCLUSIVE),  # a mixture was needed but does not fit well
        (0.50, 0.55, 3, Verdict.NO_MATCH),
        (0.50, 0.65, 3, Verdict.INCONCLUSIVE),
    ],
)
def test_decide(best: float, mixture: float | None, n: int, expected: Verdict) -> None:
    assert decide(best, mixture, n, T) is expected


def test_a_noisy_query_is_never_asserted() -> None:
    assert decide(0.99, None, 1, T, reliability=0.4) is Verdict.INCONCLUSIVE
    assert decide(0.50, 0.99, 2, T, reliability=0.4) is Verdict.INCONCLUSIVE
    assert decide(0.99, None, 1, T, reliability=0.5) is Verdict.IDENTIFIED
    assert decide(0.30, None, 1, T, reliability=0.1) is Verdict.NO_MATCH


def test_decide_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        decide(0.9, None, 0, T)


def test_thresholds_validate_and_round_trip() -> None:
    assert Thresholds.from_dict(T.to_dict()) == T
    with pytest.raises(ValueError):
        Thresholds(identify=1.5)
    with pytest.raises(ValueError):
        Thresholds(identify=0.5, inconclusive=0.6)
    with pytest.raises(ValueError):
        Thresholds(min_gain=1.0)
    with pytest.raises(ValueError):
        Thresholds(min_reliability=2.0)
    with pytest.raises(ValueError, match="unknown"):
        Thresholds.from_dict({**T.to_dict(), "extra": 1})


def test_the_shipped_default_is_calibrated() -> None:
    assert "calibrate_verdicts.py" in DEFAULT.calibration
    assert DEFAULT.inconclusive < DEFAULT.identify
