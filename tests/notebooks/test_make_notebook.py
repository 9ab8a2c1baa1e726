"""`make notebook`: the viewer override it writes into .venv names a viewer that jupytext provides.

JupyterLab opens a file type with the widget factory named in the docmanager plugin's
``defaultViewers``; a misspelled factory silently falls back to the text editor, so the name in
the Makefile is checked against the names registered by jupytext's JupyterLab extension (shipped
in the jupytext wheel that the test extra installs, under share/jupyter/labextensions).
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LABEXTENSION = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "jupyterlab-jupytext"


def _override() -> dict:
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8").replace("\\\n", "")
    match = re.search(r"echo '(\{.*\})'\s*>\s*\$\(LAB_SETTINGS\)/overrides\.json", recipe)
    assert match, "the notebook recipe no longer writes $(LAB_SETTINGS)/overrides.json"
    return json.loads(match.group(1))


def test_python_files_open_with_the_jupytext_notebook_viewer() -> None:
    viewers = _override()["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers == {"python": "Jupytext Notebook"}
    bundles = "".join(p.read_text(encoding="utf-8", errors="replace") for p in LABEXTENSION.rglob("*.js"))
    assert f'"{viewers["python"]}"' in bundles or f"'{viewers['python']}'" in bundles


def test_the_notebook_extra_brings_jupyterlab_and_jupytext() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    names = {re.split(r"[<>=\[ ]", requirement)[0] for requirement in extras["notebook"]}
    assert {"jupyterlab", "jupytext"} <= names
