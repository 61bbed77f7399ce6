"""Tests of odtrack_hf.evaluation: hand-derived values, the official ODTrack / pytracking rules, got10k cross-checks."""

from types import SimpleNamespace

import numpy as np
import pytest

from odtrack_hf.evaluation import (
    CONVENTIONS,
    SCORE_KEYS,
    box_iou,
    center_errors,
    evaluate_tracking,
    read_results,
    resolve_convention,
)

GT_BOX = [10.0, 20.0, 30.0, 40.0]
# Perfect tracking has IoU 1 in every frame. The success curve counts IoU > t: true at the 20 thresholds
# 0, 0.05, ..., 0.95 and false at 1.0, so AUC = mean of 21 points = 20/21.
PERFECT_AUC = 100 * 20 / 21


def constant(num_frames: int, box=GT_BOX) -> np.ndarray:
    return np.tile(np.asarray(box, dtype=np.float64), (num_frames, 1))


def score(predictions, ground_truth, visible=None, **kwargs) -> dict:
    """Evaluate a single sequence named 'seq'."""
    return evaluate_tracking(
        {"seq": predictions}, {"seq": ground_truth}, None if visible is None else {"seq": visible}, **kwargs
    )


def scores(result: dict) -> dict:
    return {key: result[key] for key in SCORE_KEYS}


# ----------------------------------------------------------------------------------------------- per-frame maths


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_box_iou_hand_values(convention):
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    others = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [10, 0, 10, 10], [0, 0, 10, 20]], dtype=float)
    # identical = 1; half overlap: inter 5*10 = 50, union 100 + 100 - 50 = 150; touching edges (x 0..9 and
    # 10..19 in inclusive pixels) = 0; nested: 100 / 200.
    np.testing.assert_allclose(box_iou(boxes, others, convention), [1, 1 / 3, 0, 0.5], atol=1e-12)


def test_center_errors_hand_values():
    ground_truth = np.array([[0, 0, 10, 10], [0, 0, 10, 20]], dtype=float)
    predictions = np.array([[3, 4, 10, 10], [3, 4, 10, 20]], dtype=float)
    np.testing.assert_allclose(center_errors(predictions, ground_truth), [5.0, 5.0])
    # Centres xy + (wh - 1)/2 divided by the GT size per axis: (7.5/10, 13.5/20) - (4.5/10, 9.5/20) = (0.3, 0.2).
    np.testing.assert_allclose(center_errors(predictions, ground_truth, normalized=True), [0.5, np.sqrt(0.13)])
    # The centre uses (wh - 1)/2, so a 1 px wider box moves its centre by 0.5 px.
    assert center_errors([[0, 0, 11, 10]], [[0, 0, 10, 10]])[0] == 0.5


def test_box_iou_coincides_with_got10k_rect_iou():
    got10k_metrics = pytest.importorskip("got10k.utils.metrics", reason="install the dev extra")
    rng = np.random.default_rng(0)
    first = np.concatenate([rng.uniform(-50, 200, (400, 2)), rng.uniform(0.5, 120, (400, 2))], axis=1)
    second = np.concatenate([rng.uniform(-50, 200, (400, 2)), rng.uniform(0.5, 120, (400, 2))], axis=1)
    second[:200] = np.abs(first[:200] + rng.normal(0, 4, (200, 4)))  # overlapping pairs
    expected = got10k_metrics.rect_iou(first.copy(), second.copy())
    assert (expected > 0.3).sum() > 100  # the case really covers overlaps
    np.testing.assert_array_equal(box_iou(first, second, "got10k"), expected)
    # pytracking's inclusive-pixel formula is algebraically the same IoU: they agree to rounding.
    np.testing.assert_allclose(box_iou(first, second, "odtrack"), expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(center_errors(first, second), got10k_metrics.center_error(first, second))
    np.testing.assert_array_equal(
        box_iou(first, second, "got10k", image_size=(160, 120)),
        got10k_metrics.rect_iou(first.copy(), second.copy(), bound=(160, 120)),
    )


def test_box_iou_where_conventions_differ():
    got10k_metrics = pytest.importorskip("got10k.utils.metrics", reason="install the dev extra")
    # got10k adds eps = 2.2e-16 to the union: it dominates for a box of area 1e-18 (IoU ~ 0.0045, not 1).
    # pytracking's xy + wh - 1 ... + 1 round trip costs precision on sub-pixel sizes and is not clipped to 1.
    tiny = np.array([[5.0, 5.0, 1e-9, 1e-9]])
    assert box_iou(tiny, tiny, "odtrack")[0] == pytest.approx(1.0, rel=1e-5)
    assert box_iou(tiny, tiny, "got10k")[0] == got10k_metrics.rect_iou(tiny.copy(), tiny.copy())[0] < 0.01
    # got10k clips to the image when its size is known (GOT-10k val): x 150..190 and 150..170 both become
    # 150..160, so IoU 1 instead of 400 / 800.
    prediction, target = np.array([[150.0, 10, 40, 20]]), np.array([[150.0, 10, 20, 20]])
    assert box_iou(prediction, target, "odtrack")[0] == 0.5
    assert box_iou(prediction, target, "got10k", image_size=(160, 120))[0] == 1.0
    with pytest.raises(ValueError, match="only used by convention='got10k'"):
        box_iou(prediction, target, "odtrack", image_size=(160, 120))


# ----------------------------------------------------------------------------------------------- whole sequences


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_perfect_tracking(convention):
    ground_truth = constant(6)
    result = score(ground_truth, ground_truth, convention=convention)
    assert result["auc"] == pytest.approx(PERFECT_AUC)
    np.testing.assert_array_equal(result["success_curve"], [100.0] * 20 + [0.0])
    for key in ("precision", "norm_precision", "ao", "sr50", "sr75"):
        assert result[key] == pytest.approx(100.0), key


def test_pytracking_is_an_alias_of_odtrack():
    assert resolve_convention("pytracking") == "odtrack"
    rng = np.random.default_rng(1)
    ground_truth = constant(30) + rng.uniform(-5, 5, (30, 4))
    predictions = np.abs(ground_truth + rng.normal(0, 6, (30, 4)))
    visible = rng.uniform(size=30) > 0.2
    odtrack = score(predictions, ground_truth, visible, convention="odtrack", dataset="lasot")
    pytracking = score(predictions, ground_truth, visible, convention="pytracking", dataset="lasot")
    assert scores(odtrack) == scores(pytracking)
    with pytest.raises(ValueError, match="Unknown convention 'vot'"):
        score(predictions, ground_truth, convention="vot")


def test_disjoint_boxes():
    ground_truth = constant(5)
    predictions = ground_truth + [100, 0, 0, 0]  # 100 px to the right of a 30 px wide box
    for convention in CONVENTIONS:
        np.testing.assert_array_equal(box_iou(predictions, ground_truth, convention), np.zeros(5))
    # odtrack: frame 0 is replaced by the GT (IoU 1, centre error 0) and counted, the other 4 frames fail
    # everywhere (IoU 0, error 100 px > 50, normalised 100/30 > 0.5): every rate is 1/5 except at IoU 1.0.
    odtrack = score(predictions, ground_truth)
    assert odtrack["auc"] == pytest.approx(PERFECT_AUC / 5)
    assert scores(odtrack) == pytest.approx(
        {"auc": PERFECT_AUC / 5, "precision": 20, "norm_precision": 20, "ao": 20, "sr50": 20, "sr75": 20}
    )
    # got10k: the curves also replace frame 0, but AO / SR leave it out: they are exactly 0.
    got10k = score(predictions, ground_truth, convention="got10k")
    assert scores(got10k) == pytest.approx(
        {"auc": PERFECT_AUC / 5, "precision": 20, "norm_precision": 20, "ao": 0, "sr50": 0, "sr75": 0}
    )


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_first_frame_prediction_is_ignored(convention):
    ground_truth = constant(4)
    predictions = ground_truth.copy()
    predictions[0] = [500, 500, 5, 5]
    perfect = score(ground_truth, ground_truth, convention=convention)
    assert scores(score(predictions, ground_truth, convention=convention)) == scores(perfect)


@pytest.mark.parametrize(
    ("dataset", "precision", "norm_precision"),
    [
        # invalid frames: centre error +inf (fails), normalised error -1 (succeeds: the quirk)
        (None, 50.0, 100.0),
        ("otb", 50.0, 100.0),
        ("lasot_extension_subset", 50.0, 100.0),  # the official code names it so: not 'lasot'
        ("lasot", 50.0, 50.0),  # LaSOT: both errors +inf where the target is not visible
        ("LaSOT", 50.0, 50.0),
        ("uav", 100.0, 100.0),  # UAV: centre error -1, which succeeds
    ],
)
def test_invisible_frames_official(dataset, precision, norm_precision):
    ground_truth = constant(4)
    visible = np.array([True, True, False, False])
    result = score(ground_truth, ground_truth, visible, dataset=dataset)
    # IoU -1 on the 2 invisible frames: the success rate is 2/4 below threshold 1.0. AO averages valid frames only.
    assert result["auc"] == pytest.approx(PERFECT_AUC / 2)
    assert scores(result) == pytest.approx(
        {
            "auc": PERFECT_AUC / 2,
            "precision": precision,
            "norm_precision": norm_precision,
            "ao": 100,
            "sr50": 50,
            "sr75": 50,
        }
    )
    assert result["per_sequence"]["seq"]["num_valid"] == 2


def test_zero_size_ground_truth_is_an_invalid_frame():
    ground_truth = constant(4)
    ground_truth[3, 2] = 0
    result = score(ground_truth, ground_truth)
    # Frame 3: IoU -1, centre +inf, normalised -1 (quirk): 3/4 succeed, except normalised precision 4/4.
    assert scores(result) == pytest.approx(
        {"auc": PERFECT_AUC * 3 / 4, "precision": 75, "norm_precision": 100, "ao": 100, "sr50": 75, "sr75": 75}
    )


def test_invisible_frames_are_left_out_by_got10k():
    ground_truth = constant(4)
    predictions = ground_truth.copy()
    predictions[2:] += [100, 0, 0, 0]  # wrong only where the target is absent
    result = score(predictions, ground_truth, [True, True, False, False], convention="got10k")
    assert scores(result) == pytest.approx(
        {"auc": PERFECT_AUC, "precision": 100, "norm_precision": 100, "ao": 100, "sr50": 100, "sr75": 100}
    )
    # NaN ground truth is the same as an absent target for got10k (ExperimentUAV123).
    ground_truth_nan = ground_truth.copy()
    ground_truth_nan[2:] = np.nan
    assert scores(score(predictions, ground_truth_nan, convention="got10k")) == scores(result)


def test_zero_size_prediction_takes_the_previous_one():
    ground_truth = constant(5)
    predictions = ground_truth.copy()
    predictions[1, 0] += 15  # x overlap 15 of 30 px: inter 15*40 = 600, union 2*1200 - 600 = 1800, IoU 1/3
    predictions[2:4, 2] = 0  # zero width: frames 2 and 3 both take frame 1's box (the chain is followed)
    # odtrack IoUs [1, 1/3, 1/3, 1/3, 1]: the 7 thresholds 0..0.30 pass 5 frames, the 13 thresholds
    # 0.35..0.95 pass 2 frames, 1.0 passes none: AUC = (7*5 + 13*2) / (21*5) = 61/105.
    assert score(predictions, ground_truth)["auc"] == pytest.approx(100 * 61 / 105)
    # got10k keeps the empty boxes (IoU 0). AO over frames 1..4: (1/3 + 0 + 0 + 1) / 4 = 1/3.
    assert score(predictions, ground_truth, convention="got10k")["ao"] == pytest.approx(100 / 3)


def test_zero_size_prediction_is_kept_where_ground_truth_is_nan():
    ground_truth = constant(4)
    ground_truth[2] = np.nan  # allowed with dataset="uav" only
    predictions = ground_truth.copy()
    predictions[1] = GT_BOX
    predictions[2] = [10, 20, 0, 40]
    predictions[3] = [10, 20, 0, 40]
    result = score(predictions, ground_truth, dataset="uav")
    # Frame 2 is not replaced (its GT is NaN), so frame 3 takes frame 2's empty box: IoUs [1, 1, -1, 0].
    assert result["sr50"] == pytest.approx(50)
    assert result["per_sequence"]["seq"]["num_valid"] == 3


def test_predictions_are_truncated_like_the_official_result_files():
    ground_truth = constant(3, [-3.0, 20.0, 30.0, 40.0])
    predictions = ground_truth + 0.9
    predictions[:, 0] = -3.7  # astype(int) truncates toward zero: -3.7 -> -3, 20.9 -> 20
    assert scores(score(predictions, ground_truth)) == scores(score(ground_truth, ground_truth))
    # Without truncation, frames 1 and 2: x -3.7..26.2 vs -3..26 gives 30 px, y 20.9..60.8 vs 20..59 gives
    # 39.1 px: inter 1173, union 30.9*40.9 + 1200 - 1173 = 1290.81, IoU 0.9087. Frames pass the 19 thresholds
    # up to 0.90 and fail at 0.95: AUC = (19*3 + 1*1) / (21*3) = 58/63.
    assert score(predictions, ground_truth, truncate=False)["auc"] == pytest.approx(100 * 58 / 63)
    # Truncation runs before the zero-size rule: a 0.5 px wide box becomes 0 and takes the previous box.
    thin = ground_truth.copy()
    thin[2, 2] = 0.5
    assert score(thin, ground_truth)["auc"] == pytest.approx(PERFECT_AUC)
    assert score(thin, ground_truth, truncate=False)["auc"] < PERFECT_AUC


def test_threshold_comparisons():
    ground_truth = constant(2, [0, 0, 10, 10])
    # IoU exactly 0.5 (100 / 200): success uses >, so frame 1 counts at 0.45 but not at 0.5.
    result = score(np.array([[0, 0, 10, 10], [0, 0, 10, 20]], dtype=float), ground_truth)
    assert result["success_curve"][9] == 100 and result["success_curve"][10] == 50
    # Centre error exactly 20 px: precision uses <=, so it counts at 20 px; 21 px does not.
    assert score(np.array([[0, 0, 10, 10], [20, 0, 10, 10]], dtype=float), ground_truth)["precision"] == 100
    assert score(np.array([[0, 0, 10, 10], [21, 0, 10, 10]], dtype=float), ground_truth)["precision"] == 50


def test_sequence_mean_versus_got10k_pooling():
    short_gt = constant(3, [0, 0, 10, 10])
    short_prediction = short_gt.copy()
    short_prediction[1:] = [50, 50, 10, 10]  # frames 1 and 2 lost
    long_gt = constant(4)
    predictions = {"short": short_prediction, "long": long_gt}
    ground_truth = {"short": short_gt, "long": long_gt}
    odtrack = evaluate_tracking(predictions, ground_truth)
    # Per-sequence rates averaged over sequences: short AO (1 + 0 + 0)/3, long 1, mean 2/3; SR the same.
    assert odtrack["ao"] == pytest.approx(200 / 3) and odtrack["sr50"] == pytest.approx(200 / 3)
    assert odtrack["auc"] == pytest.approx(PERFECT_AUC * 2 / 3)
    got10k = evaluate_tracking(predictions, ground_truth, convention="got10k")
    # IoUs of frames 1.. pooled over sequences: short [0, 0], long [1, 1, 1]: 3/5 (a sequence mean would give 1/2).
    assert got10k["ao"] == pytest.approx(60) and got10k["sr50"] == pytest.approx(60)
    assert got10k["per_sequence"]["short"]["ao"] == 0 and got10k["per_sequence"]["long"]["num_frames"] == 4


def test_got10k_convention_matches_the_toolkit_experiments():
    pytest.importorskip("got10k", reason="install the dev extra")
    from got10k.experiments.got10k import ExperimentGOT10k
    from got10k.experiments.otb import ExperimentOTB
    from got10k.experiments.uav123 import ExperimentUAV123
    from got10k.utils.metrics import rect_iou

    toolkit = SimpleNamespace(nbins_iou=21, nbins_ce=51)
    rng = np.random.default_rng(2)
    predictions, ground_truth, visible, image_sizes = {}, {}, {}, {}
    for index, length in enumerate((40, 25, 60)):
        gt = np.concatenate([rng.uniform(0, 300, (length, 2)), rng.uniform(5, 80, (length, 2))], axis=1)
        prediction = np.abs(gt + rng.normal(0, 8, (length, 4)))
        prediction[rng.uniform(size=length) < 0.2, :2] += 150  # some lost frames
        name = f"seq{index}"
        predictions[name], ground_truth[name], image_sizes[name] = prediction, gt, (320.0, 240.0)
        visible[name] = rng.uniform(size=length) > 0.15
    result = evaluate_tracking(predictions, ground_truth, visible, "got10k", image_sizes=image_sizes)

    pooled = []
    for name, gt in ground_truth.items():
        # Curves: ExperimentOTB.report sets boxes[0] = anno[0]; ExperimentUAV123 drops NaN annotation rows,
        # which is how an absent target is given to it here.
        boxes = predictions[name].copy()
        boxes[0] = gt[0]
        anno = np.where(visible[name][:, None], gt, np.nan)
        ious, errors = ExperimentUAV123._calc_metrics(toolkit, boxes, anno)
        success, precision = ExperimentOTB._calc_curves(toolkit, ious, errors)
        sequence = result["per_sequence"][name]
        np.testing.assert_allclose(sequence["success_curve"], success * 100, rtol=1e-12)
        np.testing.assert_allclose(sequence["precision_curve"], precision * 100, rtol=1e-12)
        # AO / SR: ExperimentGOT10k.report, frames 1.. with cover > 0, boxes clipped to the image.
        seq_ious = rect_iou(predictions[name][1:].copy(), gt[1:].copy(), bound=image_sizes[name])
        seq_ious = seq_ious[visible[name][1:]]
        ao, sr, _, _ = ExperimentGOT10k._evaluate(toolkit, seq_ious, [])
        assert sequence["ao"] == pytest.approx(ao * 100, rel=1e-12)
        assert sequence["sr50"] == pytest.approx(sr * 100, rel=1e-12)
        pooled.append(seq_ious)
    ao, sr, _, _ = ExperimentGOT10k._evaluate(toolkit, np.concatenate(pooled), [])
    assert result["ao"] == pytest.approx(ao * 100, rel=1e-12)
    assert result["sr50"] == pytest.approx(sr * 100, rel=1e-12)
    assert 0 < result["sr50"] < 100  # a non-trivial case


# ----------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("row", "message"),
    [([1, 2, np.nan, 4], r"sequence 'seq', line 3: NaN"), ([1, 2, 3, -4], r"sequence 'seq', line 3: a negative")],
)
def test_bad_prediction_names_sequence_and_line(row, message):
    predictions = constant(4)
    predictions[2] = row
    with pytest.raises(ValueError, match=message):
        score(predictions, constant(4))


def test_wrong_number_of_lines():
    ground_truth = constant(5)
    with pytest.raises(ValueError, match=r"sequence 'seq': 3 predicted boxes for 5 .*\(line 4 is missing\)"):
        score(constant(3), ground_truth)
    with pytest.raises(ValueError, match=r"sequence 'seq': 6 predicted boxes .*\(line 6 has no ground truth\)"):
        score(constant(6), ground_truth)
    with pytest.raises(ValueError, match=r"sequence 'seq': expected an \(N, 4\) array"):
        score(np.ones((5, 5)), ground_truth)
    # pytracking's rules on request: a longer result is cut, a shorter one is padded with zero boxes, which
    # are not replaced by the previous box (padding comes after that rule): 4 of 5 frames succeed.
    assert score(constant(7), ground_truth, allow_length_mismatch=True)["auc"] == pytest.approx(PERFECT_AUC)
    assert score(constant(4), ground_truth, allow_length_mismatch=True)["sr50"] == pytest.approx(80)
    # ... except a short LaSOT result, and never for got10k (its toolkit asserts equal lengths).
    with pytest.raises(ValueError, match="line 5 is missing"):
        score(constant(4), ground_truth, dataset="lasot", allow_length_mismatch=True)
    with pytest.raises(ValueError, match="line 5 is missing"):
        score(constant(4), ground_truth, convention="got10k", allow_length_mismatch=True)


def test_bad_ground_truth_and_sequence_sets():
    ground_truth = constant(4)
    ground_truth[1] = np.nan
    with pytest.raises(ValueError, match=r"sequence 'seq', ground-truth line 2: NaN"):
        score(constant(4), ground_truth)
    with pytest.raises(ValueError, match=r"sequence 'b': no predictions"):
        evaluate_tracking({"a": constant(2)}, {"a": constant(2), "b": constant(2)})
    with pytest.raises(ValueError, match=r"without ground truth: \['c'\]"):
        evaluate_tracking({"a": constant(2), "c": constant(2)}, {"a": constant(2)})
    with pytest.raises(ValueError, match=r"sequence 'seq': 3 visibility flags for 2"):
        score(constant(2), constant(2), [True, True, False])
    with pytest.raises(ValueError, match="only used by convention='got10k'"):
        score(constant(2), constant(2), image_sizes={"seq": (100, 100)})


# ----------------------------------------------------------------------------------------------- result files


@pytest.mark.parametrize("text", ["1,2,3,4\n5,6,7,8\n", "1\t2\t3\t4\n5\t6\t7\t8", "1 2 3 4\n5, 6, 7, 8\n\n"])
def test_read_results_separators(tmp_path, text):
    path = tmp_path / "seq.txt"
    path.write_text(text)
    np.testing.assert_array_equal(read_results(path), [[1, 2, 3, 4], [5, 6, 7, 8]])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3,4\n1,2,3\n", r"line 2: expected 4 values"),
        ("1,2,x,4\n", r"line 1: not a number"),
        ("1,,2,3\n", r"line 1: not a number"),
        ("1,2,3,4\n1,2,3,4\nnan,2,3,4\n", r"line 3: NaN"),
        ("1,2,3,-4\n", r"line 1: a negative width or height"),
        ("1,2,3,4\n\n1,2,3,4\n", r"line 2: empty line"),
    ],
)
def test_read_results_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "seq.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"{path}, {message}"):
        read_results(path)


# ----------------------------------------------------------------------------------------------- plots


def test_plots_overlay_trackers(tmp_path):
    from odtrack_hf.evaluation.plots import plot_precision, plot_success, save_plots

    ground_truth = {"seq": constant(5)}
    results = {
        "lost": evaluate_tracking({"seq": constant(5) + [100, 0, 0, 0]}, ground_truth),
        "perfect": evaluate_tracking(ground_truth, ground_truth),
    }
    paths = save_plots(results, tmp_path / "plots", title="toy")
    assert sorted(paths) == ["norm_precision", "precision", "success"]
    for path in paths.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    legend = [text.get_text() for text in plot_success(results).axes[0].get_legend().get_texts()]
    # Best first, with the AUC: 20/21 = 95.2 and 20/21/5 = 19.0.
    assert legend == ["perfect [AUC 95.2]", "lost [AUC 19.0]"]
    legend = [text.get_text() for text in plot_precision(results).axes[0].get_legend().get_texts()]
    assert legend == ["perfect [P@20 100.0]", "lost [P@20 20.0]"]
