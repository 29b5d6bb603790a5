"""The package reads as a map (issues 21, 34): layers, no import cycles, short functions.

Scanned from the source, as `tests/test_run_layout.py` scans for run-file names, counting
the imports inside functions too (a lazy import hides a loop from Python, not from a
reader):
- every package of kemo stands on one layer of `LAYERS`, and imports only from its own
  layer and the layers below it, never from one above (data flows one way: config ->
  data -> model -> fit -> thresholds -> report / export; what runs the flow sits above
  the steps it calls);
- an import inside a function is of a module that loads a heavy library (keras, jax,
  TensorFlow, sklearn, pandas, numpy...: start-up speed of the light commands); any other
  import stands at the top of its module;
- no two kemo modules import each other, directly or round a loop;
- no function or method in `kemo/` is longer than `MAX_LINES` lines (commands read as
  named phases, as big_vision's train.py does);
- one logging convention (`kemo.log`): library code outside `kemo.cli` never calls
  `print` and no function takes a `log` callable; it logs on `logging.getLogger(__name__)`.
"""

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "kemo"
MAX_LINES = 80


# The layers, ground floor first. A package is a folder of kemo (`kemo.prediction`) or a
# module at its top (`kemo.config`); the root `kemo` (its `load`) is "kemo". A module may
# import from its own layer and from those below it, never from a layer above.
LAYERS = (
    ("foundation", {"errors", "atomic", "checksum", "log", "interrupt", "native_logs",
                    "machine", "finite", "owned_dir", "multiprocess", "brighter_names",
                    "config", "default_config", "presets", "weights", "run"}),
    ("data", {"data"}),                    # datasets, splits, tokenised batches
    ("models", {"models"}),                # backbones and heads
    ("prediction", {"prediction"}),        # a trained run loaded; thresholds decide
    ("evaluation", {"evaluation"}),        # scores, reports; a run finished, migrated
    ("training", {"training"}),            # fit, then finish (evaluation)
    ("workflows", {"ensemble", "ensemble_weights", "finetune", "crosslingual", "serving", "explain",
                   "explain_page", "api", "kemo"}),
    ("cli", {"cli"}),                      # the `kemo` command: only it prints
)
LAYER_OF = {package: i for i, (_, packages) in enumerate(LAYERS) for package in packages}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_under(root: Path) -> dict[str, Path]:
    """Every module of the `kemo` package under `root`, by dotted name."""
    return {module_name(p, root): p for p in (root / "kemo").rglob("*.py")}


MODULES = modules_under(ROOT)


# Libraries whose import costs start-up time: an import inside a function is for these.
HEAVY = ("keras", "keras_hub", "jax", "jaxlib", "tensorflow", "tensorflow_text", "torch",
         "sklearn", "scipy", "pandas", "matplotlib", "numpy")


def all_imports(name: str, path: Path, modules: dict = MODULES) -> list[tuple[str, int, bool]]:
    """(module, line, inside a function) for each import in `path`, kemo's resolved to
    the module (or submodule) it names, other libraries' as written."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                      ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = package[:len(package) - child.level + 1] if child.level else []
                module = ".".join(base + ([child.module] if child.module else []))
                subs = {f"{module}.{a.name}" for a in child.names} & set(modules)
                found.extend((s, child.lineno, in_function) for s in sorted(subs))
                if len(subs) < len(child.names):  # and names defined in the module itself
                    found.append((module, child.lineno, in_function))
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return found


def imports_of(name: str, path: Path, modules: dict = MODULES) -> list[tuple[str, int, bool]]:
    """`all_imports` of the kemo modules in `modules` (top level or inside functions)."""
    return [(m, line, lazy) for m, line, lazy in all_imports(name, path, modules)
            if m in modules and m != name]


def imported_modules(name: str, path: Path, modules: dict = MODULES) -> set[str]:
    """The kemo modules `path` imports anywhere (top level or inside functions)."""
    return {m for m, _, _ in imports_of(name, path, modules)}


def import_graph(modules: dict = MODULES) -> dict[str, set[str]]:
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def package_of(module: str) -> str:
    """`kemo.prediction.predictor` -> "prediction"; `kemo.config` -> "config"; `kemo` -> "kemo"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_violations(modules: dict = MODULES) -> list[str]:
    """Each import (inside functions too) from a package to one on a higher layer of
    `LAYERS`, and each package that stands on no layer."""
    found = []
    for name, path in sorted(modules.items()):
        mine = LAYER_OF.get(package_of(name))
        if mine is None:
            found.append(f"{name}: package {package_of(name)!r} stands on no layer of LAYERS")
            continue
        for other, line, lazy in imports_of(name, path, modules):
            theirs = LAYER_OF.get(package_of(other), -1)
            if theirs > mine:
                where = " (inside a function)" if lazy else ""
                found.append(f"{name}:{line} imports {other}{where}: {LAYERS[mine][0]} "
                             f"may not import {LAYERS[theirs][0]}, a layer above")
    return found


def loads_heavy(modules: dict = MODULES) -> set[str]:
    """The kemo modules whose import loads a `HEAVY` library: at their top, through the
    kemo modules they import at their top, or through their parent packages; a package
    that loads on attribute access (a module `__getattr__`) counts too."""
    top = {name: [m for m, _, lazy in all_imports(name, path, modules) if not lazy]
           for name, path in modules.items()}
    heavy = {name for name, path in modules.items()
             if any(m.split(".")[0] in HEAVY for m in top[name])
             or "def __getattr__(" in path.read_text()}
    while True:
        more = {name for name in modules if name not in heavy and (
            any(m in heavy for m in top[name])
            or any(".".join(name.split(".")[:k]) in heavy for k in range(1, name.count(".") + 1)))}
        if not more:
            return heavy
        heavy |= more


def lazy_imports_without_reason(modules: dict = MODULES) -> list[str]:
    """Imports inside functions of kemo modules that load no heavy library: such an
    import keeps no command light, it only hides who depends on whom (and can hide a
    loop), so it belongs at the top of its module."""
    heavy = loads_heavy(modules)
    return [f"{name}:{line} imports {other} inside a function"
            for name, path in sorted(modules.items())
            for other, line, lazy in imports_of(name, path, modules)
            if lazy and other not in heavy]


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


def _tree(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return modules_under(root)


def test_the_layer_check_finds_an_import_that_climbs(tmp_path):
    tree = {"kemo/__init__.py": "", "kemo/errors.py": "", "kemo/run/__init__.py": "",
            "kemo/run/layout.py": "from kemo.errors import x\n",
            "kemo/prediction/__init__.py": "",
            "kemo/prediction/predictor.py": "from kemo.run import layout\n",
            "kemo/evaluation/__init__.py": "",
            "kemo/evaluation/page.py": "from kemo.prediction.predictor import load\n"}
    assert layer_violations(_tree(tmp_path / "good", tree)) == []
    tree["kemo/run/layout.py"] += "def f():\n    from kemo.evaluation import page\n"
    tree["kemo/prediction/predictor.py"] += "import kemo.evaluation.page\n"
    tree["kemo/gadgets.py"] = ""
    assert layer_violations(_tree(tmp_path / "bad", tree)) == [
        "kemo.gadgets: package 'gadgets' stands on no layer of LAYERS",
        "kemo.prediction.predictor:2 imports kemo.evaluation.page: prediction may not "
        "import evaluation, a layer above",
        "kemo.run.layout:3 imports kemo.evaluation.page (inside a function): foundation "
        "may not import evaluation, a layer above"]


def test_every_import_runs_down_the_layers():
    assert len(LAYER_OF) == sum(len(p) for _, p in LAYERS)  # each package on one layer
    assert {package_of(m) for m in MODULES} == set(LAYER_OF)  # and none declared in vain
    assert layer_violations() == []


def test_the_lazy_import_check_finds_an_import_hidden_in_a_function(tmp_path):
    tree = {"kemo/__init__.py": "", "kemo/errors.py": "", "kemo/config.py": "import numpy\n",
            "kemo/run/__init__.py": "",
            "kemo/run/lock.py": "def f():\n    from kemo.config import x\n"
                                "    from kemo.errors import InputError\n",
            "kemo/cli/__init__.py": "def main():\n    from kemo.config import y\n"}
    assert lazy_imports_without_reason(_tree(tmp_path, tree)) == [
        "kemo.run.lock:3 imports kemo.errors inside a function"]


def test_an_import_inside_a_function_keeps_start_up_light():
    assert {"kemo.prediction.trained_run", "kemo.training"} <= loads_heavy()
    assert not {"kemo.errors", "kemo.run.layout", "kemo.config"} & loads_heavy()
    assert lazy_imports_without_reason() == []


def test_each_command_is_entered_by_main():
    """"run" means a run (a directory, `Run`), not a command's entry: `kemo.cli`
    dispatches `COMMANDS[name].main(args)`."""
    commands = {name: {n.name for n in ast.parse(path.read_text()).body
                       if isinstance(n, ast.FunctionDef)}
                 for name, path in MODULES.items() if package_of(name) == "cli"}
    commands = {name: defs for name, defs in commands.items() if "add_parser" in defs}
    assert len(commands) >= 11
    assert {name: "main" in defs and "run" not in defs for name, defs in commands.items()} \
        == dict.fromkeys(commands, True)


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
