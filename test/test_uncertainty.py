"""Sparsification curves, AUSE and the coverage table on hand-computed errors and confidences."""

import numpy as np
import pytest

from mono_depth_ros.evaluation.uncertainty import (
    ause,
    frame_curves,
    sparsification,
    SparsificationScore,
)

QUARTERS = [0.0, 0.25, 0.5, 0.75]
ERRORS = np.array([4.0, 3.0, 2.0, 1.0])


def test_curves_by_hand():
    curves = frame_curves(ERRORS, np.array([0.4, 0.3, 0.2, 0.1]), QUARTERS)
    np.testing.assert_allclose(curves['oracle'], [2.5, 2.0, 1.5, 1.0])  # 4, then 3, then 2 out
    np.testing.assert_allclose(curves['confidence'], [2.5, 3.0, 3.5, 4.0])  # the worst order
    np.testing.assert_allclose(curves['random'], [2.5] * 4)
    # gaps to the oracle 0, 1, 2, 3 and 0, .5, 1, 1.5 by trapezoids of width 0.25
    assert ause(curves['confidence'], curves['oracle'], QUARTERS) == pytest.approx(1.125)
    assert ause(curves['random'], curves['oracle'], QUARTERS) == pytest.approx(0.5625)
    perfect = frame_curves(ERRORS, np.array([0.1, 0.2, 0.3, 0.4]), QUARTERS)
    np.testing.assert_allclose(perfect['confidence'], perfect['oracle'])
    assert ause(perfect['confidence'], perfect['oracle'], QUARTERS) == 0.0


def test_sparsification_keeps_at_least_one_pixel_and_checks_input():
    assert sparsification(ERRORS, np.arange(4), [0.0, 0.99, 1.0]).tolist() == [2.5, 1.0, 1.0]
    with pytest.raises(ValueError, match='non-empty 1-D'):
        sparsification(np.array([]), np.array([], int), QUARTERS)
    with pytest.raises(ValueError, match='4 errors but 3 confidences'):
        frame_curves(ERRORS, np.ones(3), QUARTERS)


def test_score_averages_frames_and_pools_the_coverage_table(tmp_path):
    score = SparsificationScore(QUARTERS, thresholds=(0.0, 0.25))
    score.add(ERRORS, np.array([0.4, 0.3, 0.2, 0.1]))   # worst ranking
    score.add(ERRORS, np.array([0.1, 0.2, 0.3, 0.4]))   # perfect ranking
    report = score.report()
    assert report['frames'] == 2
    assert report['ause'] == pytest.approx((1.125 + 0.0) / 2)
    assert report['ause_random'] == pytest.approx(0.5625)
    assert report['ause_ratio'] == pytest.approx(0.5625 / 0.5625)
    # >= 0.25 keeps errors 4, 3 (frame 1) and 2, 1 (frame 2): half the pixels, mean 2.5
    assert report['coverage_table'] == [
        {'min_confidence': 0.0, 'coverage': 1.0, 'abs_rel': 2.5},
        {'min_confidence': 0.25, 'coverage': 0.5, 'abs_rel': 2.5}]
    # the least confident half of the pixels (0.1, 0.2) goes first: min_confidence 0.3 keeps
    # errors 4, 3 (frame 1, confidences 0.4, 0.3) and 2, 1 (frame 2): half, mean 2.5
    keep = {row['keep']: row for row in score.keep_table((1.0, 0.5, 0.25))}
    assert keep[1.0] == {'keep': 1.0, 'min_confidence': 0.1, 'coverage': 1.0, 'abs_rel': 2.5}
    assert keep[0.5] == {'keep': 0.5, 'min_confidence': 0.3, 'coverage': 0.5, 'abs_rel': 2.5}
    # a quarter: confidence >= 0.4 keeps error 4 (frame 1) and 1 (frame 2)
    assert keep[0.25] == {'keep': 0.25, 'min_confidence': 0.4, 'coverage': 0.25, 'abs_rel': 2.5}
    assert report['keep_table'][0]['coverage'] == 1.0
    score.plot(str(tmp_path / 'sparsification.png'), 'test')
    assert (tmp_path / 'sparsification.png').stat().st_size > 1000
    with pytest.raises(ValueError, match='no frame with confidence'):
        SparsificationScore().report()
