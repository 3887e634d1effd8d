"""Every parameter of mono_depth_node, declared once: type, range, choices and description.

Pure data and validation (no rclpy). Defaults live only in config/mono_depth_node.yaml; the node
turns these specs into ParameterDescriptors and the table of docs/node.md is generated from them.
"""

from dataclasses import dataclass
import math
import os
from pathlib import Path
import re
from typing import Any

from mono_depth_ros.core.config import ConfigError, load_yaml
from mono_depth_ros.core.paths import DEFAULT_MODEL, default_model, find_share_file
from mono_depth_ros.core.rectify import DISTORTION_MODELS, RECTIFY_MODES
from mono_depth_ros.inference.backends import BACKENDS, get_backend

NODE_NAME = 'mono_depth_node'
PARAMS_FILE = 'mono_depth_node.yaml'
# A camera name is a topic namespace: '' (the node's own topics), cam_a, /car/front, ...
CAMERA_NAME = re.compile(r'/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*')
# How the parameter table (docs/node.md) writes each parameter type.
# fallback_intrinsics: KITTI's left colour camera scaled to the image size.
FALLBACK_KITTI = 'kitti'
TYPE_NAMES = {bool: 'bool', int: 'int', float: 'float', str: 'str', list: 'str[]'}


class ParamError(ConfigError):
    """A node parameter has a value it cannot take; the message says what to set."""


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: name, Python type, description, limits and whether it is fixed."""

    name: str
    type: type
    description: str
    choices: tuple[str, ...] = ()
    range: tuple[float, float] | None = None
    step: int = 0
    read_only: bool = False

    @property
    def type_name(self) -> str:
        """The type as the parameter table writes it (str[] for a string array)."""
        return TYPE_NAMES[self.type]

    def limits(self) -> str:
        """Human-readable allowed values, for errors and the parameter table."""
        if self.choices:
            return ', '.join(self.choices)
        if self.range is not None:
            text = f'[{self.range[0]:g}, {self.range[1]:g}]'
            return text + (f' step {self.step}' if self.step else '')
        return ''


SPECS: tuple[ParamSpec, ...] = (
    ParamSpec('autostart', bool, 'Configure and activate the node at start, as a plain node '
              'does; false: start unconfigured and wait for lifecycle transitions '
              '(<node>/change_state), e.g. from a lifecycle manager.', read_only=True),
    ParamSpec('checkpoint', str, 'Checkpoint file (.pt) written by mono-depth-train, or an .onnx '
              'file from mono-depth-export with backend onnx; empty: the default model of the '
              f'package (models/{DEFAULT_MODEL}, installed with it).', read_only=True),
    ParamSpec('backend', str, 'Inference backend: torch (reference), fast (folded BatchNorm; '
              'GPU preprocessing and CUDA graphs on CUDA) or onnx (ONNX Runtime on an exported '
              'model given as checkpoint).', choices=tuple(BACKENDS), read_only=True),
    ParamSpec('compile', bool, 'With backend fast: torch.compile the network (inductor, '
              'static shapes; needs a C++ compiler on the CPU). The compilation runs at '
              'configure (about a minute per batch size on a small CPU).', read_only=True),
    ParamSpec('allow_random_weights', bool, 'With checkpoint empty: build model_config with '
              'random weights instead of loading the default model (for trying other networks '
              'only: the depth is meaningless).',
              read_only=True),
    ParamSpec('model_config', str, 'Network config name or path (models/*.yaml), used only with '
              'allow_random_weights; a checkpoint carries its own config.', read_only=True),
    ParamSpec('device', str, 'Inference device; auto picks CUDA when available.',
              choices=('auto', 'cuda', 'cpu'), read_only=True),
    ParamSpec('precision', str, 'Inference precision (fp16/bf16 only on CUDA).',
              choices=('fp32', 'fp16', 'bf16'), read_only=True),
    ParamSpec('input_height', int, 'Network input height in pixels; 0 uses the model input size.',
              range=(0, 2048), step=32, read_only=True),
    ParamSpec('input_width', int, 'Network input width in pixels; 0 uses the model input size.',
              range=(0, 4096), step=32, read_only=True),
    ParamSpec('cameras', list, 'Camera names, one per camera: camera C is read from C/image '
              '(or C/image/compressed) and C/camera_info and published under C (C/depth, '
              "C/points, ...); [''] is one camera on the node's own topics. All cameras share "
              'one model; frames ready together go through the network as one batch.',
              read_only=True),
    ParamSpec('image_transport', str, 'Subscribe to image (sensor_msgs/Image) or '
              'image/compressed (sensor_msgs/CompressedImage).',
              choices=('raw', 'compressed'), read_only=True),
    ParamSpec('input_qos', str, 'QoS of the image and camera_info subscriptions.',
              choices=('sensor_data', 'reliable'), read_only=True),
    ParamSpec('rectify', str, 'auto: an image whose CameraInfo has distortion (D ≠ 0) is '
              'rectified with that calibration before inference, as image_proc does, and depth '
              'is published in the rectified camera (CameraInfo P); supported models: '
              f'{", ".join(sorted(DISTORTION_MODELS))}. off: every image is taken as rectified '
              '(warned once when D ≠ 0).', choices=RECTIFY_MODES),
    ParamSpec('stamp_tolerance', float, 'Seconds within which an image and a CameraInfo stamp '
              'count as the same frame.', range=(0.0, 1.0)),
    ParamSpec('camera_info_wait', float, 'Seconds an image waits for the CameraInfo of its '
              'stamp once the camera has sent one before; then the latest CameraInfo stands in '
              '(a fixed calibration), so a late or lost CameraInfo does not hold the frame up.',
              range=(0.0, 1.0)),
    ParamSpec('camera_info_timeout', float, 'Seconds from the first image without any '
              'CameraInfo before fallback_intrinsics stand in (with a warning); without '
              'fallback_intrinsics the camera waits for its CameraInfo and processes nothing. '
              'Once one has arrived, the latest stands in for late ones.',
              range=(0.0, 3600.0)),
    ParamSpec('fallback_intrinsics', str, "A stated guess for a camera that sends no "
              "CameraInfo: '' (none: wait for CameraInfo, say so in /diagnostics), kitti "
              "(KITTI's intrinsics scaled to the image size) or 'fx, fy, cx, cy' in pixels of "
              'the image as received. Metric scale and the cloud are only right for the true '
              'intrinsics.'),
    ParamSpec('output_qos', str, 'QoS of the outputs: reliable (RViz, bags, depth_image_proc) '
              'or sensor_data (best effort).',
              choices=('reliable', 'sensor_data'), read_only=True),
    ParamSpec('min_depth', float, 'Metres; depth below this is published as NaN and is the '
              'near end of the colour scale.', range=(0.001, 1000.0)),
    ParamSpec('max_depth', float, 'Metres; depth above this is published as NaN and is the far '
              'end of the colour scale.', range=(0.01, 1000.0)),
    ParamSpec('publish_depth', bool, 'Publish depth (32FC1 metres) and depth/camera_info.'),
    ParamSpec('publish_confidence', bool, 'Publish depth/confidence (models with a bin head).'),
    ParamSpec('publish_colorized', bool, 'Publish depth/colorized (bgr8, fixed metric scale).'),
    ParamSpec('publish_points', bool, 'Publish points (PointCloud2, xyz + rgb, optical frame).'),
    ParamSpec('cloud_stride', int, 'Keep every n-th row and column of the depth in the cloud.',
              range=(1, 64), step=1),
    ParamSpec('cloud_organized', bool, 'Organised cloud (one point per kept pixel, NaN where '
              'invalid) or only the valid points.'),
    ParamSpec('max_range', float, 'Metres; points farther than this are left out of the cloud '
              '(0: no limit).', range=(0.0, 1000.0)),
    ParamSpec('min_confidence', float, 'Points with a lower confidence are left out of the cloud '
              '(models with a bin head).', range=(0.0, 1.0)),
    ParamSpec('cloud_edge_threshold', float, 'Points whose depth jumps to a neighbouring pixel by '
              'more than this share of the nearer depth are left out of the cloud: flying '
              'pixels between a near and a far surface (0: keep all).', range=(0.0, 100.0)),
    ParamSpec('error_log_period', float, 'Seconds between two log lines about the same kind of '
              'bad input (each one is still counted in diagnostics).', range=(0.0, 86400.0)),
    ParamSpec('diagnostics_period', float, 'Seconds between /diagnostics messages.',
              range=(0.1, 60.0), read_only=True),
)
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}


def default_params_file() -> Path:
    """Locate config/mono_depth_node.yaml in the source tree or the installed share folder."""
    try:
        return find_share_file('config', PARAMS_FILE)
    except FileNotFoundError as error:
        raise ParamError(str(error)) from None


def read_params_file(path: str | os.PathLike) -> dict[str, Any]:
    """The node's values in a ros2 params file (under mono_depth_node or /**), validated."""
    data = load_yaml(path)
    for key in (NODE_NAME, '/' + NODE_NAME, '/**'):
        section = data.get(key)
        if isinstance(section, dict) and isinstance(section.get('ros__parameters'), dict):
            return validate(section['ros__parameters'], where=str(path))
    raise ParamError(f'{path} must hold {NODE_NAME}: ros__parameters: {{...}}')


def load_defaults(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read the defaults of every parameter from the params file, strictly and type-checked."""
    path = Path(path) if path is not None else default_params_file()
    values = read_params_file(path)
    missing = sorted(set(SPEC_BY_NAME) - set(values))
    if missing:
        raise ParamError(f'{path} gives no default for parameter(s) {missing}')
    return values


def check_value(name: str, value: Any) -> Any:
    """Return value converted to the parameter's type, or raise ParamError saying what to set."""
    if name not in SPEC_BY_NAME:
        raise ParamError(f'unknown parameter {name!r}; valid parameters are '
                         f'{sorted(SPEC_BY_NAME)}')
    spec = SPEC_BY_NAME[name]
    if spec.type is list:
        return check_cameras(name, value)
    if name == 'fallback_intrinsics':
        return check_fallback_intrinsics(name, value)
    if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not spec.type:
        raise ParamError(f'parameter {name!r} must be a {spec.type.__name__}, got {value!r}')
    if spec.choices and value not in spec.choices:
        raise ParamError(f'parameter {name!r} = {value!r} is not allowed; set it to one of: '
                         f'{spec.limits()}')
    if spec.range is not None:
        low, high = spec.range
        bad_step = spec.step and value != high and (value - low) % spec.step
        if not (low <= value <= high) or (isinstance(value, float) and math.isnan(value)) \
                or bad_step:
            raise ParamError(f'parameter {name!r} = {value!r} is out of range; set it within '
                             f'{spec.limits()}')
    return value


def check_cameras(name: str, value: Any) -> list[str]:
    """The camera names as a list, or ParamError: a non-empty list of distinct namespaces."""
    example = "set it to a list of topic namespaces, e.g. ['cam_a', 'cam_b'] ([''] for the " \
        "node's own topics)"
    if not isinstance(value, list | tuple) or not value \
            or not all(isinstance(item, str) for item in value):
        raise ParamError(f'parameter {name!r} = {value!r} is not a non-empty list of strings; '
                         f'{example}')
    bad = [item for item in value if item and not CAMERA_NAME.fullmatch(item)]
    if bad:
        raise ParamError(f'parameter {name!r}: {bad} not a topic namespace (letters, digits, _ '
                         f'and /, not starting with a digit); {example}')
    repeated = sorted({item for item in value if value.count(item) > 1})
    if repeated:
        raise ParamError(f'parameter {name!r} lists {repeated} more than once; {example}')
    return list(value)


def check_fallback_intrinsics(name: str, value: Any) -> str:
    """The value unchanged, or ParamError: '', kitti or four numbers fx, fy, cx, cy."""
    allowed = "set it to '' (no guess), kitti, or 'fx, fy, cx, cy' in pixels"
    if not isinstance(value, str):
        raise ParamError(f'parameter {name!r} must be a str, got {value!r}; {allowed}')
    if value.strip() in ('', FALLBACK_KITTI):
        return value.strip()
    try:
        parse_intrinsics(value)
    except ValueError as error:
        raise ParamError(f'parameter {name!r} = {value!r}: {error}; {allowed}') from None
    return value


def parse_intrinsics(text: str) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) from 'fx, fy, cx, cy'; ValueError unless four finite numbers with
    positive focal lengths."""
    parts = [part for part in text.replace(',', ' ').split() if part]
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        raise ValueError(f'{text!r} is not four numbers fx, fy, cx, cy') from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f'{text!r} is not four finite numbers fx, fy, cx, cy')
    if values[0] <= 0 or values[1] <= 0:
        raise ValueError(f'focal lengths must be positive, got fx={values[0]} fy={values[1]}')
    return values


def validate(values: dict[str, Any], where: str = 'parameters') -> dict[str, Any]:
    """Check every value and the relations between them; return the converted values."""
    unknown = sorted(set(values) - set(SPEC_BY_NAME))
    if unknown:
        raise ParamError(f'unknown parameter(s) {unknown} in {where}; valid parameters are '
                         f'{sorted(SPEC_BY_NAME)}')
    checked = {name: check_value(name, value) for name, value in values.items()}
    if 'min_depth' in checked and 'max_depth' in checked \
            and checked['min_depth'] >= checked['max_depth']:
        raise ParamError(f'min_depth ({checked["min_depth"]}) must be below max_depth '
                         f'({checked["max_depth"]}) in {where}')
    if (checked.get('input_height', 0) == 0) != (checked.get('input_width', 0) == 0):
        raise ParamError(f'set both input_height and input_width, or both to 0, in {where}')
    return checked


def resolve_checkpoint(values: dict[str, Any]) -> dict[str, Any]:
    """The values with an empty checkpoint replaced by the package's default model.

    An empty checkpoint with allow_random_weights stays empty (random weights of model_config).
    A missing default model raises ParamError naming where it was looked for and what to set.
    """
    if values['checkpoint'] or values['allow_random_weights']:
        return dict(values)
    try:
        path = default_model()
    except FileNotFoundError as error:
        raise ParamError(f'checkpoint is empty, so the default model is loaded, but {error}: set '
                         'the parameter checkpoint to a .pt file written by mono-depth-train, or '
                         'reinstall the package (its models/ folder holds the default '
                         'model)') from None
    return {**values, 'checkpoint': str(path)}


def check_model_source(values: dict[str, Any]) -> dict[str, Any]:
    """The values with their checkpoint resolved (resolve_checkpoint); fail unless it names an
    existing file the backend can run, or random weights are explicitly allowed."""
    values = resolve_checkpoint(values)
    path = values['checkpoint']
    if path and not os.path.isfile(path):
        raise ParamError(f'checkpoint file not found: {path!r}; set the parameter checkpoint '
                         'to a .pt file written by mono-depth-train (or empty for the '
                         'default model)')
    backend = get_backend(values['backend'])
    if backend.source == 'onnx' and not str(path).endswith('.onnx'):
        raise ParamError(f'backend {backend.name} runs an exported model: set the parameter '
                         'checkpoint to an .onnx file written by mono-depth-export '
                         f'(got {path!r})')
    if backend.source != 'onnx' and str(path).endswith('.onnx'):
        raise ParamError(f'checkpoint {path!r} is an ONNX model: set the parameter backend to '
                         'onnx')
    if values.get('compile') and not backend.compiles:
        raise ParamError(f'compile applies to backend fast only (backend is '
                         f'{values["backend"]!r}): set backend to fast or compile to false')
    return values


def markdown_table(defaults: dict[str, Any] | None = None) -> str:
    """The parameter table of docs/node.md: name, type, default, allowed values, description."""
    defaults = load_defaults() if defaults is None else defaults
    rows = ['| parameter | type | default | allowed | description |',
            '| --- | --- | --- | --- | --- |']
    for spec in SPECS:
        default = defaults[spec.name]
        shown = repr(default) if isinstance(default, str) else str(default).lower() \
            if isinstance(default, bool) else str(default)
        fixed = ' (read-only)' if spec.read_only else ''
        rows.append(f'| `{spec.name}` | {spec.type_name} | `{shown}` | {spec.limits()} | '
                    f'{spec.description}{fixed} |')
    return '\n'.join(rows)


def resolve_params(params_file: str | os.PathLike | None = None, overrides: list[str] = (),
                   checkpoint: str | None = None, where: str = 'parameters',
                   require_model: bool = True) -> dict[str, Any]:
    """Node parameters: the package defaults, then a params file, then NAME=VALUE overrides.

    The offline tools take the node's parameters this way; the result is validated and, with
    require_model, has a model source (check_model_source: an empty checkpoint is the default
    model).
    """
    import yaml

    values = load_defaults()
    if params_file:
        values.update(read_params_file(params_file))
    for item in overrides:
        name, sep, raw = item.partition('=')
        if not sep:
            raise ParamError(f'override {item!r} must look like name=value')
        values[name] = yaml.safe_load(raw)
    if checkpoint:
        values['checkpoint'] = checkpoint
    values = validate(values, where=where)
    if require_model:
        values = check_model_source(values)
    return values
