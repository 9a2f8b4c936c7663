"""The rooms import one way: the command line on top, then the reports and the Kubeflow client, then the pipeline
definition with its runners, guards and metadata access, then the custom components, then the model code, and the
config and data at the bottom. A test rather than a convention, so an arrow back up fails CI."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each room's layer; a module belongs to the room of its longest matching name. A module may import from its own
# room or from rooms on strictly lower layers.
ROOMS = {"config": 0, "data": 0, "models": 1, "components": 2, "pipeline": 3,
         "pipeline.reports": 4, "pipeline.kubeflow": 4, "pipeline.cli": 5}


def _room(module: str) -> str:
    return max((room for room in ROOMS if module == room or module.startswith(room + ".")), key=len)


def _project_imports(path: Path) -> set[str]:
    """The project modules (dotted names) that the file at ``path`` imports, at its top or inside functions."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)  # from pipeline import reports
    return {name for name in imported if name.split(".")[0] in ROOMS}


def _modules():
    for package in ("config", "data", "models", "components", "pipeline"):
        for path in sorted((ROOT / package).rglob("*.py")):
            yield ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"), path


@pytest.mark.parametrize("module, path", list(_modules()), ids=lambda value: str(value))
def test_no_import_runs_back_up_a_layer(module, path):
    room = _room(module)
    for name in _project_imports(path):
        other = _room(name)
        assert other == room or ROOMS[other] < ROOMS[room], f"{module} imports {name}: {other} is not below {room}"


def test_the_command_line_alone_is_on_top():
    top = max(ROOMS.values())
    assert [room for room, layer in ROOMS.items() if layer == top] == ["pipeline.cli"]


def test_config_imports_nothing_of_the_project_but_itself():
    for module, path in _modules():
        if _room(module) == "config":
            assert {name.split(".")[0] for name in _project_imports(path)} <= {"config"}, module


def test_no_module_repeats_its_package_name():
    for module, _ in _modules():
        parts = module.split(".")
        assert len(parts) < 2 or parts[-1] != parts[-2], module
