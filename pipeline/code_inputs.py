"""The package files a module runs: its import closure inside ``pipeline``, found by reading the source.

Rules list these as code inputs, so that a change to any module a stage imports re-runs that stage,
and the learner spec's code digest covers exactly the code that decides a learner's models. Imports
are read with ``ast`` (module level and inside functions); nothing is imported.
"""

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name


def _module_file(name: str):
    """The source file of module ``pipeline.a.b`` (a package's __init__.py), or None outside the package."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_files(path: Path) -> set:
    """Package files imported by the module at ``path`` (and the packages they are in)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                file = _module_file(".".join(parts[:i]))
                if file is not None:
                    found.add(file)
    return found


def _dynamic_imports(path: Path) -> set:
    """Modules a module loads by name at run time: the learner registry (learners/__init__.py) imports
    every learner module listed in learners/specs.py."""
    if path != PACKAGE_DIR / "learners" / "__init__.py":
        return set()
    from .learners.specs import SPECS

    return {_module_file(spec["module"]) for spec in SPECS.values()}


@lru_cache(maxsize=None)
def closure(module_path: str, dynamic: bool = True) -> tuple:
    """Package-relative paths of every package file ``module_path`` (e.g. "stages/train.py") runs, itself
    included, sorted. ``dynamic``: also follow the learner registry's imports by name (a stage that looks
    learners up by name runs any of them; a learner module itself runs only its own imports)."""
    start = PACKAGE_DIR / module_path
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        parents = {_module_file(_module_name(path).rpartition(".")[0])} - {None}  # a module runs its package too
        todo.extend((_imported_files(path) | (_dynamic_imports(path) if dynamic else set()) | parents) - seen)
    return tuple(sorted(str(p.relative_to(PACKAGE_DIR)) for p in seen))
