"""The architecture holds: the core (``recsys/`` outside the edges ``recsys/api/`` and ``recsys/cli.py``)
names neither Flask, Celery nor the ``workers`` package, statically or dynamically, and works without
them: a build through the in-process job runner, a search and an upsert."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from recsys.settings import PROJECT_ROOT

CORE = PROJECT_ROOT / "recsys"
EDGES = (CORE / "api", CORE / "cli.py")
FORBIDDEN = ("flask", "werkzeug", "celery", "kombu", "workers")


def core_modules() -> list[Path]:
    return [
        path
        for path in sorted(CORE.rglob("*.py"))
        if not any(path == edge or edge in path.parents for edge in EDGES)
    ]


def named_modules(tree: ast.AST) -> list[str]:
    """Modules a file imports, or could import by name: import statements, and any string passed to
    ``importlib.import_module`` / ``__import__``."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                names += [
                    a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
                ]
                names.append(
                    "<dynamic>" if not node.args or not isinstance(node.args[0], ast.Constant) else ""
                )
    return [n for n in names if n]


def test_no_core_module_names_the_edges() -> None:
    offenders = {}
    for path in core_modules():
        found = [
            name
            for name in named_modules(ast.parse(path.read_text(encoding="utf-8")))
            if name == "<dynamic>" or name.split(".")[0] in FORBIDDEN
        ]
        if found:
            offenders[str(path.relative_to(PROJECT_ROOT))] = found
    assert len(core_modules()) > 20
    assert offenders == {}


BLOCKED_RUN = textwrap.dedent(
    """
    import sys, time, importlib.abc

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {forbidden!r}:
                raise ImportError(f"{{name}} is not importable in this test")
            return None

    sys.meta_path.insert(0, Block())
    from pathlib import Path
    from recsys.build.jobs import make_control
    from recsys.build.pipeline import job_status
    from recsys.build.runner import ThreadRunner, start_reindex
    from recsys.build.updates import DeltaWriter
    from recsys.model.hashing import HashEncoder
    from recsys.model.templates import Template
    from recsys.query.engine import Engine
    from recsys.settings import Settings

    settings = Settings.from_env({{}}, data_dir=Path({data!r}), annoy_trees=4)
    encoder, template = HashEncoder(), Template.load(settings.templates_path)
    control = make_control(settings)
    runner = ThreadRunner(settings, control, lambda: (encoder, template))
    job = start_reindex(settings, control, runner, {catalogue!r})["task_id"]
    deadline = time.monotonic() + 120
    while not (record := job_status(control, job)).finished and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record.status == "succeeded", record
    engine = Engine(settings, encoder, template)
    assert engine.search("wireless headphones", k=3).to_list()
    DeltaWriter(settings, encoder, template).upsert([{{"id": "n-1", "title": "Quasar lute, walnut"}}])
    engine.refresh()
    assert engine.search("quasar lute", k=1).to_list()[0]["id"] == "n-1"
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
    assert not loaded, loaded
    print("ok", record.version)
    """
)


def test_a_build_a_search_and_an_upsert_run_with_the_edges_unimportable(
    small_catalogue: Path, tmp_path: Path
) -> None:
    code = BLOCKED_RUN.format(
        forbidden=FORBIDDEN, data=str(tmp_path / "data"), catalogue=str(small_catalogue)
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stdout + result.stderr
