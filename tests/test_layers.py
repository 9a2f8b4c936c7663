"""The packages import one way: command line -> runners -> pipeline definition -> custom components -> model code
-> config and data at the bottom. A test rather than a convention, so an arrow back up a layer fails CI."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each package's layer; a module may import only from layers strictly below its own, or from its own package.
LAYERS = {"config": 0, "data": 0, "models": 1, "components": 2, "pipeline": 3}
# Inside pipeline/, the same rule module by module.
PIPELINE_LAYERS = {
    "pipeline.pipeline": 0, "pipeline.report": 0, "pipeline.preflight": 0, "pipeline.output_lock": 0,
    "pipeline.schema_store": 0, "pipeline.resource_watch": 0, "pipeline.run_details": 0,
    "pipeline.predict": 0, "pipeline.kubeflow_client": 0, "pipeline.kfp_cron": 0,
    "pipeline.limits": 1, "pipeline.console": 1, "pipeline.html_report": 1, "pipeline.runners": 1,
    "pipeline.reporting": 2,
    "pipeline.cli": 3,
}


def _project_imports(path: Path) -> set[str]:
    """The project modules (dotted names) that the file at ``path`` imports."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
            imported.add(node.module)
    return {name for name in imported if name.split(".")[0] in LAYERS}


def _modules():
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"), path


@pytest.mark.parametrize("module, path", list(_modules()), ids=lambda value: str(value))
def test_no_import_runs_back_up_a_layer(module, path):
    package = module.split(".")[0]
    for name in _project_imports(path):
        other = name.split(".")[0]
        if other == package:
            continue
        assert LAYERS[other] < LAYERS[package], f"{module} imports {name}: {other} is not below {package}"


def test_inside_pipeline_the_command_line_is_on_top():
    for module, layer in PIPELINE_LAYERS.items():
        path = ROOT / (module.replace(".", "/") + ".py")
        for name in _project_imports(path):
            target = next((m for m in PIPELINE_LAYERS if name == m or name.startswith(m + ".")), None)
            if target and target != module:
                assert PIPELINE_LAYERS[target] < layer, f"{module} imports {target}, which is not below it"


def test_every_pipeline_module_has_a_layer():
    modules = {m for m, _ in _modules() if m.startswith("pipeline.")}
    assert modules == set(PIPELINE_LAYERS)


def test_config_imports_nothing_of_the_project_but_itself():
    for module, path in _modules():
        if module.split(".")[0] == "config":
            assert {name.split(".")[0] for name in _project_imports(path)} <= {"config"}, module
