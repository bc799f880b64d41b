"""Every ```bash and ```python block of README.md and docs/*.md runs.

Each page runs in a temporary folder of its own, its blocks in page order,
as a reader would type them: bash blocks with `bash -euo pipefail`, python
blocks in one Python process per page (as in one interpreter session, so a
later block may use what an earlier one defined). What the folder holds:

* the working directory has a copy of `dummy_data/`;
* `HOME` is a fresh folder holding copies of the samples, so the docs' `~/...`
  paths are real: `~/animal_photos`, `~/coco`, `~/voc`, `~/csv`, `~/seed001`;
* this checkout's package is imported (`PYTHONPATH`) and the project's venv
  comes first on `PATH` (`tfds`, `image-folder-tfds`, `python`).

A block passes when it exits 0. A ```text block right after it (blank lines
only between) is its output: each of its lines must match a line of the
block's stdout, in order (other lines may come between); `...` in a line
matches any text, and `~` stands for `HOME`.

A block is left out only with a visible marker on the line before it, giving
the reason: `<!-- snippet: skip (needs a cloud account) -->`. The blocks after
README's `<!-- readme-command-N -->` markers are `.ci/run`'s (they install the
project and run these tests). Every block left out is listed as a warning.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import select
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SAMPLES = ("animal_photos", "coco", "voc", "csv", "seed001")
LANGUAGES = {"bash": "bash", "sh": "bash", "python": "python"}
BLOCK_TIMEOUT = 600  # Seconds; a block of the docs builds a few tiny datasets.

_FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)")
_MARKER = re.compile(r"^<!--\s*snippet:(.*?)-->\s*$")
_SKIP = re.compile(r"^\s*skip\s*\((.*\S.*)\)\s*$")
_CI = re.compile(r"^<!-- readme-command-\d+ -->$")


class SnippetError(ValueError):
  """A page's snippet markers are malformed."""


@dataclasses.dataclass
class Block:
  page: str
  line: int  # Of the opening fence, from 1.
  language: str  # "bash" or "python".
  code: str
  skip: str | None = None  # The reason it is not run.
  expected: list[str] | None = None  # Its ```text output block's lines.

  def where(self) -> str:
    return f"{self.page}:{self.line}"


def parse(text: str, page: str = "page.md") -> list[Block]:
  """The runnable blocks of a Markdown page, with their markers and output."""
  lines = text.splitlines()
  fenced = []  # (start line index, language, body lines)
  i = 0
  while i < len(lines):
    m = _FENCE.match(lines[i])
    if not m:
      i += 1
      continue
    fence, lang = m.group(1), m.group(2).lower()
    end = i + 1
    while end < len(lines) and not lines[end].startswith(fence):
      end += 1
    if end == len(lines):
      raise SnippetError(f"{page}:{i + 1}: code block never closed")
    fenced.append((i, end, lang, lines[i + 1:end]))
    i = end + 1
  blocks = []
  for n, (start, end, lang, body) in enumerate(fenced):
    if lang not in LANGUAGES:
      continue
    before = start - 1
    while before >= 0 and not lines[before].strip():
      before -= 1
    skip = None
    marker = _MARKER.match(lines[before].strip()) if before >= 0 else None
    if marker:
      reason = _SKIP.match(marker.group(1))
      if not reason:
        raise SnippetError(
            f"{page}:{before + 1}: a snippet marker must read"
            " `<!-- snippet: skip (the reason) -->`, got"
            f" {lines[before].strip()!r}")
      skip = reason.group(1).strip()
    # The readme-command marker may sit a few lines above (.ci/run takes the
    # first ```bash block after it).
    for j in range(start - 1, -1, -1):
      if _CI.match(lines[j]):
        skip = skip or "README's command, run by .ci/run"
        break
      if _FENCE.match(lines[j]):
        break
    expected = None
    if n + 1 < len(fenced):
      nstart, _, nlang, nbody = fenced[n + 1]
      if nlang == "text" and all(not l.strip() for l in lines[end + 1:nstart]):
        expected = [l.rstrip() for l in nbody if l.strip()]
    blocks.append(Block(page, start + 1, LANGUAGES[lang],
                        "\n".join(body) + "\n", skip, expected))
  return blocks


def output_mismatch(expected: list[str], actual: str, home: str) -> str | None:
  """None if each expected line matches an actual line, in order."""
  got = [l.rstrip() for l in actual.replace(home, "~").splitlines()]
  at = 0
  for want in expected:
    pattern = re.compile(".*".join(re.escape(p) for p in want.split("...")))
    while at < len(got) and not pattern.fullmatch(got[at]):
      at += 1
    if at == len(got):
      return (f"expected the line {want!r} (in this order), but the output"
              " was:\n" + textwrap.indent("\n".join(got) or "(nothing)", "  "))
    at += 1
  return None


_SERVER = r'''
import contextlib, io, json, os, sys, traceback
reply = os.fdopen(int(sys.argv[1]), "w")
namespace = {"__name__": "__main__"}
for line in sys.stdin:
  code = json.loads(line)
  out = io.StringIO()
  error = None
  try:
    with contextlib.redirect_stdout(out):
      exec(compile(code, "<snippet>", "exec"), namespace)
  except BaseException:
    error = traceback.format_exc()
  sys.stdout.flush()
  reply.write(json.dumps({"out": out.getvalue(), "error": error}) + "\n")
  reply.flush()
'''


class PythonSession:
  """One Python process that runs a page's python blocks in one namespace."""

  def __init__(self, cwd, env):
    read, write = os.pipe()
    self._reply = os.fdopen(read)
    self._log = open(os.path.join(cwd, ".python_session.log"), "w+")
    self._proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(write)], cwd=cwd, env=env,
        stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT,
        text=True, pass_fds=(write,))
    os.close(write)

  def run(self, code: str) -> tuple[bool, str]:
    self._proc.stdin.write(json.dumps(code) + "\n")
    self._proc.stdin.flush()
    ready, _, _ = select.select([self._reply], [], [], BLOCK_TIMEOUT)
    line = self._reply.readline() if ready else ""
    if not line:
      self._log.seek(0)
      return False, f"the Python session died or hung:\n{self._log.read()}"
    result = json.loads(line)
    if result["error"]:
      return False, result["out"] + result["error"]
    return True, result["out"]

  def close(self):
    self._proc.stdin.close()
    try:
      self._proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
      self._proc.kill()
      self._proc.wait()
    self._reply.close()
    self._log.close()


def workspace(tmp: pathlib.Path) -> tuple[pathlib.Path, dict[str, str]]:
  """The working directory and environment a page's snippets run in."""
  home, work = tmp / "home", tmp / "work"
  home.mkdir(parents=True)
  shutil.copytree(REPO / "dummy_data", work / "dummy_data")
  for sample in SAMPLES:
    shutil.copytree(REPO / "dummy_data" / sample, home / sample)
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("TFDS_", "PYTEST_", "IMAGE_FOLDER_TFDS_"))}
  env.update(
      HOME=str(home),
      PATH=os.pathsep.join([os.path.dirname(sys.executable),
                            env.get("PATH", "")]),
      PYTHONPATH=str(REPO),
      TF_CPP_MIN_LOG_LEVEL="3",
      NO_COLOR="1",
  )
  return work, env


def run_page(blocks: list[Block], tmp: pathlib.Path) -> list[str]:
  """Runs the blocks in order; returns the failures (empty: all passed)."""
  work, env = workspace(tmp)
  session = None
  failures = []
  try:
    for block in blocks:
      if block.skip:
        continue
      if block.language == "bash":
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.code], cwd=work,
            env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
        ok, out = proc.returncode == 0, proc.stdout
        if not ok:
          out = (f"exit {proc.returncode}\n--- stdout\n{proc.stdout}"
                 f"--- stderr\n{proc.stderr[-4000:]}")
      else:
        session = session or PythonSession(work, env)
        ok, out = session.run(block.code)
      if not ok:
        failures.append(f"{block.where()} failed:\n{block.code}\n{out}")
        break  # Later blocks of the page build on this one.
      if block.expected is not None:
        mismatch = output_mismatch(block.expected, out, env["HOME"])
        if mismatch:
          failures.append(f"{block.where()}: {mismatch}")
  finally:
    if session is not None:
      session.close()
  return failures


def _page_id(page: pathlib.Path) -> str:
  return str(page.relative_to(REPO))


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_snippet_of_the_page_runs(page, tmp_path):
  blocks = parse(page.read_text(encoding="utf-8"), _page_id(page))
  for block in blocks:
    if block.skip:
      warnings.warn(f"{block.where()}: {block.language} snippet not run:"
                    f" {block.skip}")
  failures = run_page(blocks, tmp_path)
  assert not failures, "\n\n".join(failures)


def test_every_page_parses_and_skips_say_why():
  counts = {}
  for page in PAGES:
    blocks = parse(page.read_text(encoding="utf-8"), _page_id(page))
    counts[_page_id(page)] = (len(blocks), sum(bool(b.skip) for b in blocks))
  assert sum(n for n, _ in counts.values()) > 0
  readme = parse((REPO / "README.md").read_text(encoding="utf-8"), "README.md")
  ci = [b for b in readme if b.skip == "README's command, run by .ci/run"]
  assert len(ci) == 2 and all(b.language == "bash" for b in ci)


# --- the runner itself -------------------------------------------------------


PAGE = """\
# A page

```bash
echo "hello $HOME"
```

```text
hello ~
```

<!-- snippet: skip (needs a cloud account) -->
```python
raise SystemExit("not run")
```

```python
x = 41
```

Plain text, then another block in the same session:

```python
print(x + 1)
```
```text
4...
```
"""


def test_parse_finds_blocks_markers_and_outputs():
  blocks = parse(PAGE)
  assert [(b.line, b.language, b.skip, b.expected) for b in blocks] == [
      (3, "bash", None, ["hello ~"]),
      (12, "python", "needs a cloud account", None),
      (16, "python", None, None),
      (22, "python", None, ["4..."]),
  ]


def test_a_skip_needs_a_reason():
  with pytest.raises(SnippetError, match="page.md:1: a snippet marker"):
    parse("<!-- snippet: skip -->\n```bash\ntrue\n```\n")
  with pytest.raises(SnippetError, match="never closed"):
    parse("```bash\ntrue\n")


def test_run_page_passes_and_fails_as_it_should(tmp_path):
  assert run_page(parse(PAGE), tmp_path / "a") == []
  wrong_output = PAGE.replace("hello ~\n", "goodbye\n")
  (failure,) = run_page(parse(wrong_output), tmp_path / "b")
  assert "page.md:3: expected the line 'goodbye'" in failure
  broken = PAGE.replace("x = 41", "x = undefined_name")
  (failure,) = run_page(parse(broken), tmp_path / "c")
  assert "page.md:16 failed" in failure and "NameError" in failure
  failing_bash = "```bash\nls ~/animal_photos/dog >/dev/null\nfalse\n```\n"
  (failure,) = run_page(parse(failing_bash), tmp_path / "d")
  assert "page.md:1 failed" in failure and "exit 1" in failure
