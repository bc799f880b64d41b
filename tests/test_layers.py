"""The package's imports: no circle, and only those docs/development.md allows.

Imports are read from the source with `ast`, module level and inside
functions alike (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import functools
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = "image_folder_tfds"
MAP = ROOT / "docs" / "development.md"


def module_files() -> dict[str, pathlib.Path]:
  """`readers.coco` -> its file; the package itself is `image_folder_tfds`."""
  out = {}
  for path in sorted((ROOT / PACKAGE).rglob("*.py")):
    parts = path.relative_to(ROOT / PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
      parts = parts[:-1]
    out[".".join(parts) or PACKAGE] = path
  return out


def imports_of(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
  """The package's modules that `name` imports, anywhere in its file."""
  package = name if path.name == "__init__.py" else name.rpartition(".")[0]
  found = set()
  for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
    if isinstance(node, ast.Import):
      targets = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      if node.level:  # Relative: from the module's own package.
        base = [] if package == PACKAGE else package.split(".")
        base = base[:len(base) - node.level + 1]
        module = ".".join([PACKAGE, *base, *([node.module] if node.module
                                             else [])])
      else:
        module = node.module or ""
      targets = [f"{module}.{a.name}" for a in node.names] + [module]
    else:
      continue
    for target in targets:
      if target != PACKAGE and not target.startswith(PACKAGE + "."):
        continue
      short = target[len(PACKAGE) + 1:] or PACKAGE
      if short in known:
        found.add(short)
        if isinstance(node, ast.ImportFrom):
          break  # `from x import submodule` imports the submodule only.
  found.discard(name)
  return found


@functools.cache
def import_graph() -> dict[str, set[str]]:
  files = module_files()
  return {name: imports_of(name, path, set(files))
          for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """One import circle (`[a, b, a]`), or None."""
  state: dict[str, int] = {}  # 1: on the current path, 2: done.
  path: list[str] = []

  def visit(node):
    state[node] = 1
    path.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 1:
        return path[path.index(nxt):] + [nxt]
      if nxt not in state:
        cycle = visit(nxt)
        if cycle:
          return cycle
    path.pop()
    state[node] = 2
    return None

  for node in sorted(graph):
    if node not in state:
      cycle = visit(node)
      if cycle:
        return cycle
  return None


def documented_layers() -> tuple[dict[str, str], dict[str, set[str]]]:
  """From the table of docs/development.md: module -> layer, and what each
  layer may import (layer names and single modules)."""
  text = MAP.read_text(encoding="utf-8")
  section = text.split("## What each module may import", 1)[1]
  layer_of, allowed = {}, {}
  for line in section.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) != 3 or cells[0] in ("layer", "") or set(cells[0]) <= {"-"}:
      continue
    layer, modules, may = cells
    for module in re.findall(r"`([^`]+)`", modules):
      assert module not in layer_of, f"{module} is in two layers of {MAP}"
      layer_of[module] = layer
    allowed[layer] = {m.strip().strip("`") for m in may.split(",")}
  assert allowed, f"{MAP} has no layer table"
  return layer_of, allowed


def layer_name(module: str, layer_of: dict[str, str]) -> str | None:
  if module in layer_of:
    return layer_of[module]
  top = module.split(".")[0]
  return layer_of.get(f"{top}/*")


def test_the_import_graph_has_no_circle():
  assert find_cycle(import_graph()) is None, find_cycle(import_graph())


def test_the_graph_sees_function_level_imports():
  graph = import_graph()
  # cli.py imports inspection inside `_inspect`, config imports remote
  # inside `__post_init__`.
  assert "inspection" in graph["cli"]
  assert "remote" in graph["config"]
  assert "readers" in graph["config"]
  assert {"readers.coco", "readers.folders"} <= graph["readers"]


def test_find_cycle_finds_one():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_every_module_has_a_documented_layer():
  layer_of, _ = documented_layers()
  missing = [m for m in import_graph() if layer_name(m, layer_of) is None]
  assert not missing, f"add these modules to the table of {MAP}: {missing}"
  stale = [m for m in layer_of
           if not m.endswith("/*") and m not in import_graph()]
  assert not stale, f"{MAP} lists modules that do not exist: {stale}"


@pytest.mark.parametrize("module", sorted(import_graph()))
def test_imports_follow_the_documented_layers(module):
  layer_of, allowed = documented_layers()
  layer = layer_name(module, layer_of)
  may = allowed[layer]
  wrong = sorted(
      target for target in import_graph()[module]
      if layer_name(target, layer_of) not in may and target not in may)
  assert not wrong, (
      f"{module} ({layer}) imports {wrong}, which {MAP} does not allow"
      f" (a {layer} module may import: {sorted(may)})")


def test_inspection_knows_no_output_format():
  assert not {"model_garden", "features", "writing", "beam"} & (
      import_graph()["inspection"])


def test_the_worker_side_imports_neither_tensorflow_nor_tfds():
  """Worker processes load `pipeline` and what it imports: they start fast."""
  graph, files = import_graph(), module_files()
  closure, todo = set(), ["pipeline"]
  while todo:
    module = todo.pop()
    if module not in closure:
      closure.add(module)
      todo.extend(graph[module])
  assert closure == {"pipeline", "images", "annotations", "check_cache",
                     "masks", "records", "wire"}
  for module in closure:
    for node in ast.walk(ast.parse(files[module].read_text(encoding="utf-8"))):
      names = ([a.name for a in node.names] if isinstance(node, ast.Import)
               else [node.module or ""] if isinstance(node, ast.ImportFrom)
               else [])
      heavy = [n for n in names
               if n.split(".")[0] in ("tensorflow", "tensorflow_datasets")]
      assert not heavy, f"{module} imports {heavy}"
