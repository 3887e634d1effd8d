"""Score a checkpoint or saved predictions against KITTI-protocol ground truth (mono-depth-eval),
on a KITTI-layout split or a mono-depth-bag-gt folder (evaluation.frames).

Predictions are resized to the ground-truth size with bilinear interpolation of depth
(cv2.INTER_LINEAR; +inf, beyond range, by nearest neighbour), then scored with
mono_depth_ros.core.metrics (clamped to [min, max] depth, averaged per image). A checkpoint runs
through the DepthEstimator interface (any backend) with each frame's calibration (focal
scaling) and, given the node's output settings, also yields what the node would publish: that
depth and cloud are scored too (coverage, beyond range, sky, flying pixels: evaluation.published),
and the confidence's ranking of the errors (sparsification, AUSE: evaluation.uncertainty).
Writes metrics.json, per_frame.csv, error_by_distance.png, montage.png and sparsification.png.
"""

from dataclasses import asdict, dataclass, replace
import json
import os

import cv2
import numpy as np
from tqdm import tqdm

from mono_depth_ros.core.constants import MAX_DEPTH, MIN_DEPTH
from mono_depth_ros.core.metrics import average_metrics, crop_mask, depth_errors, scored_pixels
from mono_depth_ros.datasets.kitti.ground_truth import load_gt_npz
from mono_depth_ros.evaluation.breakdown import RegionScores
from mono_depth_ros.evaluation.frames import open_frames
from mono_depth_ros.evaluation.published import PublishedScore
from mono_depth_ros.evaluation.report import (
    DistanceBins,
    ensure_dir,
    montage_row,
    save_montage,
    write_csv,
)
from mono_depth_ros.evaluation.uncertainty import SparsificationScore
from mono_depth_ros.inference.outputs import compute_outputs, OutputSettings

PRED_KEYS = ('pred', 'depth', 'pred_depth')


@dataclass
class EvalSettings:
    """What to score and how (the options of mono-depth-eval)."""

    data_path: str
    split: str | None = None            # packaged split name, or
    split_file: str | None = None       # a split list of one's own
    checkpoint: str | None = None       # a model to run, or
    pred_npz: str | None = None         # saved N×H×W predictions in split order
    gt: str | None = None               # ground-truth source; None: the split's protocol
    gt_npz: str | None = None           # exported ground truth (mono-depth-export-gt)
    camera_z: bool = False
    skip_missing: bool = False
    output_dir: str = 'eval_results'
    crop: str | None = None             # garg, eigen, none; None: the split's protocol
    min_depth: float = MIN_DEPTH
    max_depth: float = MAX_DEPTH
    median_scaling: bool = False
    montage_frames: int = 4
    image_ext: str = '.png'
    backend: str = 'torch'
    device: str = 'auto'
    precision: str = 'fp32'
    outputs: OutputSettings | None = None  # the node's output settings (checkpoint mode)


def load_pred_npz(path: str, frames: int) -> np.ndarray:
    """Load an N×H×W array of metric depths (.npz or .npy) and check N against the split."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'prediction file not found: {path}')
    if path.endswith('.npy'):
        pred = np.load(path, allow_pickle=False)
    else:
        with np.load(path, allow_pickle=False) as data:
            keys = [key for key in PRED_KEYS if key in data.files] or data.files
            if len(keys) != 1:
                raise ValueError(f'{path} holds arrays {data.files}; name the predictions '
                                 f'one of {PRED_KEYS} or store a single array')
            pred = data[keys[0]]
    if pred.ndim != 3 or not np.issubdtype(pred.dtype, np.number):
        raise ValueError(f'{path}: predictions must be an N×H×W numeric array of metric '
                         f'depths, got {pred.dtype} with shape {pred.shape}')
    if len(pred) != frames:
        raise ValueError(f'{path} holds {len(pred)} predictions but the split has {frames} '
                         'frames: predictions must cover the split, in split order')
    return pred


def make_estimator(settings: EvalSettings):
    """The checkpoint's DepthEstimator (inference.backends.load_estimator); ValueError if bad."""
    from mono_depth_ros.inference.backends import load_estimator
    from mono_depth_ros.networks.checkpoint import CheckpointError

    try:
        return load_estimator(settings.checkpoint, settings.backend, settings.device,
                              settings.precision)
    except CheckpointError as error:
        raise ValueError(str(error)) from error


def resize_prediction(pred: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a depth prediction to the ground-truth (H, W) with bilinear interpolation; +inf
    (beyond range) by nearest neighbour, so it does not bleed into its neighbours."""
    pred = np.asarray(pred, dtype=np.float32)
    if pred.shape == tuple(size):
        return pred
    beyond = np.isposinf(pred)
    finite = np.where(beyond, np.nanmax(np.where(beyond, np.nan, pred)), pred) \
        if beyond.any() and not beyond.all() else pred
    out = cv2.resize(finite, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    if beyond.any():
        far = cv2.resize(beyond.astype(np.uint8), (size[1], size[0]),
                         interpolation=cv2.INTER_NEAREST).astype(bool)
        out[far] = np.inf
    return out


@dataclass
class FramePrediction:
    """One frame's prediction: the raw depth (scored by the KITTI protocol) and, where known,
    what the node publishes (NaN invalid, +inf beyond range), confidence and organised cloud."""

    depth: np.ndarray
    published: np.ndarray | None = None
    confidence: np.ndarray | None = None
    cloud: np.ndarray | None = None     # ceil(H/s)×ceil(W/s)×3 at cloud_stride s
    cloud_stride: int = 1


class CheckpointPredictor:
    """Runs a DepthEstimator on each frame's image with its calibration (frames.intrinsics:
    the KITTI calibration, or a bag-gt folder's YAML); with the node's output settings it also
    makes the published depth and cloud (inference.outputs)."""

    needs_image = True

    def __init__(self, estimator, frames, settings: OutputSettings | None) -> None:
        self.estimator, self.frames, self.settings = estimator, frames, settings

    def __call__(self, index: int, entry, image: np.ndarray) -> FramePrediction:
        """The prediction of one frame."""
        intrinsics = self.frames.intrinsics(entry)
        if self.settings is None:
            prediction = self.estimator.predict(image, fx=intrinsics[0])
            return FramePrediction(prediction.depth, prediction.depth, prediction.confidence)
        settings = replace(self.settings, cloud_organized=True, points=True, colorized=False)
        prediction, grid = self.estimator.predict_points(
            image, *intrinsics, stride=settings.cloud_stride,
            depth_range=(settings.min_depth, settings.max_depth), confidence=True)
        outputs = compute_outputs(prediction.depth, prediction.confidence, image, intrinsics,
                                  settings, grid)
        return FramePrediction(prediction.depth, outputs.depth, outputs.confidence,
                               outputs.points, settings.cloud_stride)


class ArrayPredictor:
    """Saved predictions in split order (mono-depth-eval --pred-npz)."""

    needs_image = False

    def __init__(self, preds: np.ndarray) -> None:
        self.preds = preds

    def __call__(self, index: int, entry, image: np.ndarray | None) -> FramePrediction:
        """The saved depth of frame index (also taken as what would be published)."""
        return FramePrediction(self.preds[index], self.preds[index])


def make_predictor(settings: EvalSettings, frames):
    """The predictor of --checkpoint or --pred-npz for the frames (evaluation.frames)."""
    if settings.checkpoint:
        return CheckpointPredictor(make_estimator(settings), frames, settings.outputs)
    if settings.pred_npz:
        return ArrayPredictor(load_pred_npz(settings.pred_npz, len(frames.entries)))
    raise ValueError('nothing to evaluate: give a checkpoint or saved predictions')


def evaluate(settings: EvalSettings, predictor=None) -> dict:
    """Score every frame of the split; write the reports; return the metrics.json content.

    predictor(index, entry, image) -> FramePrediction; by default the settings' checkpoint or
    saved predictions (make_predictor). A predictor with needs_image False gets the image only
    for the montage.
    """
    s = settings
    frames = open_frames(s.data_path, s.split, s.split_file, s.gt, s.camera_z, s.image_ext)
    label, entries = frames.label, frames.entries
    crop_name = s.crop or frames.default_crop
    crop = None if crop_name == 'none' else crop_name
    gt_table, gt_name = None, frames.gt_name
    if s.gt_npz:
        lines, depths, gt_name = load_gt_npz(s.gt_npz)
        gt_table = dict(zip(lines, depths, strict=True))
    predictor = predictor or make_predictor(s, frames)
    regions = getattr(frames, 'regions', None)          # real lidar frames: error per region
    show = set(np.linspace(0, len(entries) - 1, min(s.montage_frames, len(entries)))
               .round().astype(int).tolist()) if s.montage_frames > 0 else set()
    scores = FrameScores(crop, s.min_depth, s.max_depth, s.median_scaling)
    skipped, montage = [], []
    for index, entry in enumerate(tqdm(entries, desc='evaluate', unit='frame')):
        try:
            if gt_table is not None:
                if entry.line() not in gt_table:
                    raise FileNotFoundError(f'{s.gt_npz} has no ground truth for this frame')
                gt = gt_table[entry.line()]
            else:
                gt = frames.ground_truth(entry)
            image = frames.image(entry) if (predictor.needs_image or index in show or regions) \
                else None
            prediction = predictor(index, entry, image)
            labels = regions(entry, image) if regions else None
        except FileNotFoundError as error:
            if not s.skip_missing:
                raise FileNotFoundError(f'frame "{entry.line()}": {error} '
                                        '(use --skip-missing to skip such frames)') from error
            skipped.append(entry.line())
            continue
        try:
            mask, pred = scores.add(index, entry.line(), gt, prediction, labels)
        except ValueError as error:
            raise ValueError(f'frame "{entry.line()}": {error}') from error
        if index in show:
            label_text = frames.title(entry)
            panels = montage_row(cv2.resize(image, (gt.shape[1], gt.shape[0])), gt, pred, mask,
                                 s.min_depth, s.max_depth)
            montage.append((label_text, panels))
    if not scores.rows:
        raise FileNotFoundError(f'all {len(entries)} frames of {label} miss files')
    report = {**average_metrics(scores.rows), 'frames': len(scores.rows),
              'skipped': len(skipped), 'split': label, 'ground_truth': gt_name,
              'crop': crop_name, 'min_depth': s.min_depth, 'max_depth': s.max_depth,
              'median_scaling': s.median_scaling,
              'prediction': s.pred_npz or s.checkpoint or getattr(predictor, 'name', None),
              'interpolation': 'bilinear', 'by_distance': scores.bins.table(),
              'skipped_frames': skipped, 'published': scores.published.report(),
              'output_settings': None if s.outputs is None else asdict(s.outputs)}
    if scores.sparsification.frames:
        report['sparsification'] = scores.sparsification.report()
    if scores.regions.frames:
        report['breakdown'] = scores.regions.report()
    write_reports(s.output_dir, report, scores.rows, scores.bins, montage)
    if scores.sparsification.frames:
        scores.sparsification.plot(os.path.join(s.output_dir, 'sparsification.png'),
                                   f'{label}: {scores.sparsification.frames} frames')
    return report


class FrameScores:
    """Everything scored per frame: protocol metrics, distance bins, published depth and cloud,
    the confidence's sparsification and, on real lidar frames, the error per region."""

    def __init__(self, crop: str | None, min_depth: float, max_depth: float,
                 median_scaling: bool) -> None:
        self.crop, self.limits = crop, (crop, min_depth, max_depth, median_scaling)
        self.rows: list[dict] = []
        self.bins = DistanceBins(max_depth)
        self.published = PublishedScore(min_depth, max_depth)
        self.sparsification = SparsificationScore()
        self.regions = RegionScores()

    def add(self, index: int, line: str, gt: np.ndarray, prediction: FramePrediction,
            labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Score one frame (labels: its region map, evaluation.breakdown); returns the scored
        mask and the prediction at the truth's size."""
        pred = resize_prediction(prediction.depth, gt.shape)
        mask, gt_valid, pred_valid = scored_pixels(gt, pred, *self.limits)
        self.bins.add(gt_valid, pred_valid)
        if labels is not None:
            self.regions.add(line, labels[mask], gt_valid, pred_valid)
        published = prediction.published
        if published is not None and published.shape == gt.shape:
            cropped = np.where(crop_mask(gt.shape, self.crop), gt, 0.0)  # 0: not scored
            self.published.add_depth(cropped, published)
            if prediction.cloud is not None:
                self.published.add_cloud(cropped, prediction.cloud, prediction.cloud_stride)
        confidence = prediction.confidence
        if confidence is not None and confidence.shape == gt.shape:
            self.sparsification.add(np.abs(pred_valid - gt_valid) / gt_valid, confidence[mask])
        self.rows.append({'index': index, 'frame': line, 'valid_pixels': int(mask.sum()),
                          **depth_errors(gt_valid, pred_valid)})
        return mask, pred


def write_reports(folder: str, report: dict, rows: list[dict], bins: DistanceBins,
                  montage: list) -> None:
    """Write metrics.json, per_frame.csv, error_by_distance.png and montage.png into folder."""
    ensure_dir(folder)
    with open(os.path.join(folder, 'metrics.json'), 'w', encoding='utf-8') as stream:
        json.dump(without_nan(report), stream, indent=2)
    write_csv(os.path.join(folder, 'per_frame.csv'), rows)
    bins.plot(os.path.join(folder, 'error_by_distance.png'),
              f'{report["split"]}: {report["frames"]} frames')
    if montage:
        save_montage(os.path.join(folder, 'montage.png'), montage, report['min_depth'],
                     report['max_depth'])


def without_nan(value):
    """Replace NaN floats (empty distance bins) by None, recursively, for strict JSON."""
    if isinstance(value, dict):
        return {key: without_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nan(item) for item in value]
    return None if isinstance(value, float) and value != value else value
