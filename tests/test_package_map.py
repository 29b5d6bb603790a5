"""The package reads as a map (issue 21): no import cycles, short functions, layers.

Scanned from the source, as `tests/test_run_layout.py` scans for run-file names:
- no two kemo modules import each other, directly or round a loop, counting the imports
  inside functions too (a lazy import hides a cycle from Python, not from a reader);
- no function or method in `kemo/` is longer than `MAX_LINES` lines (commands read as
  named phases, as big_vision's train.py does);
- `kemo.data` imports nothing from `kemo.models` (data flows one way: config -> data ->
  model -> fit -> thresholds -> report/export);
- one logging convention (`kemo.log`): library code outside `kemo.cli` never calls
  `print` and no function takes a `log` callable; it logs on `logging.getLogger(__name__)`.
"""

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "kemo"
MAX_LINES = 80


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported_modules(name: str, path: Path) -> set[str]:
    """The kemo modules `path` imports anywhere (top level or inside functions)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            subs = {f"{module}.{a.name}" for a in node.names} & set(MODULES)
            found |= subs  # `from kemo.models import mpnet`: the submodule
            if len(subs) < len(node.names):  # and names defined in the module itself
                found.add(module)
    return {m for m in found if m in MODULES and m != name}


def import_graph() -> dict[str, set[str]]:
    return {name: imported_modules(name, path) for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert len(MODULES) > 50 and imported_modules(
        "kemo.training.trainer", MODULES["kemo.training.trainer"]
    ) >= {"kemo.config", "kemo.evaluation.finish"}
    assert cycles(import_graph()) == []


def test_data_imports_nothing_from_models():
    graph = import_graph()
    bad = {name: sorted(m for m in graph[name] if m.startswith("kemo.models"))
           for name in graph if name.startswith("kemo.data")}
    assert {k: v for k, v in bad.items() if v} == {}


def long_functions(max_lines: int = MAX_LINES) -> list[str]:
    found = []
    for name, path in sorted(MODULES.items()):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > max_lines:
                    found.append(f"{name}.{node.name}: {lines} lines")
    return found


def test_no_function_is_longer_than_80_lines():
    assert long_functions(10)  # the scan sees functions at all
    assert long_functions() == []


def console_writes(source: str) -> list[str]:
    """`print(...)` calls, parameters named `log`, and loggers not named after their
    module (`getLogger("...")`) in `source`: what the logging convention rules out."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "print":
            found.append(f"line {node.lineno}: print(...)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "getLogger" and not (
                    node.args and isinstance(node.args[0], ast.Name)
                    and node.args[0].id == "__name__"):
            found.append(f"line {node.lineno}: getLogger not of __name__")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            if any(a.arg == "log" for a in args):
                found.append(f"line {node.lineno}: {node.name}(log=...)")
    return sorted(found, key=lambda f: int(f.split()[1].rstrip(":")))


def test_the_console_scan_finds_prints_and_log_callables():
    sample = ("import logging\nlog = logging.getLogger('x')\n"
              "def f(n, log=print):\n    print(n)\n    log(n)\n"
              "def g():\n    return 'print(1)'  # a string is not a call\n")
    assert console_writes(sample) == ["line 2: getLogger not of __name__",
                                      "line 3: f(log=...)", "line 4: print(...)"]


def test_library_code_logs_and_only_the_cli_prints():
    bad = {name: console_writes(path.read_text()) for name, path in sorted(MODULES.items())
           if not (name == "kemo.cli" or name.startswith("kemo.cli.")) and name != "kemo.log"}
    assert {k: v for k, v in bad.items() if v} == {}
