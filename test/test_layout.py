"""The package layout: one layer per folder, imports only downwards, no cycles, rclpy in ROS only.

Layers, lowest first: core → networks, datasets → inference, training → evaluation, timing →
study → ros (the live node) → bags (the offline bag tools) → bench → tools. A module imports
modules of its own folder or of a lower layer, never a sibling of the same rank. Every import
counts, at module level or inside a function; an import names the module it loads (`from pkg
import submodule` is an edge to the submodule, as `import pkg.submodule` is: parent packages
load implicitly with any dotted import).
"""

import ast
from pathlib import Path
import subprocess
import sys
import textwrap

import pytest

PACKAGE = 'mono_depth_ros'
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE
LAYERS = {'core': 0, 'networks': 1, 'datasets': 1, 'inference': 2, 'training': 2,
          'evaluation': 3, 'timing': 3, 'study': 4, 'ros': 5, 'bags': 6, 'bench': 7, 'tools': 8}
ROS_FOLDERS = ('ros', 'bags', 'tools', 'bench')
# ROS-layer modules that must not need rclpy (the node's logic, tested without DDS).
RCLPY_FREE_ROS = ('conversions', 'depth_messages', 'node_logic', 'params', 'pipeline', 'stamps',
                  'node_process', 'frame_sync', 'frame_handover', 'camera_report')
MAX_LOOSE_MODULES = 6


def module_name(path: Path) -> str:
    """Dotted module name of a file of the package (a package's __init__ is the package)."""
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob('*.py'))}


def folder(module: str) -> str | None:
    """The layer folder of a module (None for the package's own __init__)."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else None


def imported(module: str) -> set[str]:
    """Package modules a module imports (anywhere in it), and every other top-level import."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    package = module if MODULES[module].name == '__init__.py' else module.rpartition('.')[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                names.add(f'{base}.{alias.name}' if f'{base}.{alias.name}' in MODULES else base)
    return names


IMPORTS = {module: imported(module) for module in MODULES}


def package_edges() -> dict[str, set[str]]:
    """Import graph between the package's modules."""
    return {module: {name for name in names if name in MODULES and name != module}
            for module, names in IMPORTS.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in sorted(edges):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(edges[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(edges[nxt])))
    return None


def test_every_package_folder_is_a_known_layer():
    folders = {folder(m) for m in MODULES} - {None}
    assert folders == set(LAYERS), f'folders without a layer rank: {folders - set(LAYERS)}'


def test_cycle_finder_finds_a_planted_cycle():
    edges = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
    assert find_cycle(edges) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set(), 'c': {'a', 'b'}}) is None


def test_no_import_cycle_between_modules():
    cycle = find_cycle(package_edges())
    assert cycle is None, f'import cycle: {" -> ".join(cycle)}'


def test_imports_only_run_downwards():
    wrong = []
    for module, targets in package_edges().items():
        here = folder(module)
        for target in targets:
            there = folder(target)
            if here is None or there == here:
                continue
            if there is None or LAYERS[there] >= LAYERS[here]:
                wrong.append(f'{module} imports {target}')
    assert not wrong, 'imports against the layer order:\n' + '\n'.join(sorted(wrong))


def test_tools_and_bench_are_imported_only_from_above():
    for module, targets in package_edges().items():
        if folder(module) != 'tools':
            assert not [t for t in targets if folder(t) == 'tools'], module
        if folder(module) not in ('tools', 'bench'):
            assert not [t for t in targets if folder(t) == 'bench'], module


def test_rclpy_only_in_the_ros_layer_tools_and_bench():
    users = [m for m, names in IMPORTS.items()
             if any(n == 'rclpy' or n.startswith('rclpy.') for n in names)]
    assert users, 'the node imports rclpy: the scan must see it'
    assert all(folder(m) in ROS_FOLDERS for m in users), \
        [m for m in users if folder(m) not in ROS_FOLDERS]


def test_few_loose_modules_at_the_top():
    loose = sorted(p.name for p in PACKAGE_DIR.glob('*.py') if p.name != '__init__.py')
    assert len(loose) <= MAX_LOOSE_MODULES, loose


BLOCK_RCLPY = textwrap.dedent("""
    import importlib, sys

    class BlockRclpy:
        def find_spec(self, name, path=None, target=None):
            if name == 'rclpy' or name.startswith('rclpy.'):
                raise ImportError('rclpy is blocked in this test: ' + name)
            return None

    sys.meta_path.insert(0, BlockRclpy())
    for name in sys.argv[1:]:
        importlib.import_module(name)
    assert 'rclpy' not in sys.modules
    print('imported', len(sys.argv) - 1)
""")


def import_without_rclpy(modules: list[str]) -> subprocess.CompletedProcess:
    """Import modules in a fresh interpreter in which importing rclpy raises ImportError."""
    return subprocess.run([sys.executable, '-c', BLOCK_RCLPY, *modules], capture_output=True,
                          text=True, timeout=300, cwd=PACKAGE_DIR.parent)


@pytest.mark.slow
def test_everything_outside_ros_imports_with_rclpy_blocked():
    wanted = [m for m in MODULES if folder(m) not in ROS_FOLDERS]
    wanted += [f'{PACKAGE}.ros.{name}' for name in RCLPY_FREE_ROS]
    assert len(wanted) > 40
    result = import_without_rclpy(wanted)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'imported {len(wanted)}' in result.stdout


def test_rclpy_block_catches_a_module_that_needs_rclpy():
    result = import_without_rclpy([f'{PACKAGE}.ros.node'])
    assert result.returncode != 0 and 'rclpy is blocked' in result.stderr

def defined_functions(name: str) -> list[str]:
    """Modules that define a function or method called name."""
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        if any(isinstance(node, ast.FunctionDef) and node.name == name
               for node in ast.walk(tree)):
            found.append(module)
    return found


def called(name: str) -> list[str]:
    """Modules that call a function or method called name."""
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                if getattr(func, 'id', None) == name or getattr(func, 'attr', None) == name:
                    found.append(module)
                    break
    return found


def test_estimator_interface_is_written_once():
    for method in ('predict', 'predict_batch', 'predict_points'):
        assert defined_functions(method) == [f'{PACKAGE}.inference.estimator'], method


def test_one_backend_table_behind_every_backend_choice():
    from mono_depth_ros.inference.backends import BACKENDS
    from mono_depth_ros.ros.params import SPEC_BY_NAME
    from mono_depth_ros.timing.model_timing import BACKENDS as BENCH_ROWS

    assert SPEC_BY_NAME['backend'].choices == tuple(BACKENDS)
    assert {name for name, _ in BENCH_ROWS.values()} == set(BACKENDS)
    assert defined_functions('create_estimator') == [f'{PACKAGE}.inference.backends']


def test_one_frame_pipeline_for_node_and_bag_tool():
    assert called('estimate_outputs') == [f'{PACKAGE}.ros.pipeline']
    assert called('output_messages') == [f'{PACKAGE}.ros.pipeline']
    users = set(called('FramePipeline'))
    assert {f'{PACKAGE}.ros.node', f'{PACKAGE}.bags.depth_bag'} <= users


def test_stamp_conversion_and_percentiles_exist_once():
    nanosec = [m for m, p in MODULES.items() if '.nanosec' in p.read_text()]
    assert nanosec == [f'{PACKAGE}.ros.stamps'], nanosec
    percentile = [m for m, p in MODULES.items() if 'np.percentile' in p.read_text()]
    assert percentile == [f'{PACKAGE}.core.stats'], percentile
