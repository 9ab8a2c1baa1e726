"""Every notebook (a jupytext percent script in notebooks/) executes headless without error in
small mode (GENLAB_NOTEBOOK_SMALL=1): jupytext -> nbformat -> nbclient, kernel python3 of this
interpreter, working directory the repository root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.py"))


def test_both_notebooks_are_present() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"tour.py", "landscape.py"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_in_small_mode(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    jupytext = pytest.importorskip("jupytext", reason="the test extra (jupytext, nbclient) is not installed")
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    monkeypatch.setenv("GENLAB_NOTEBOOK_SMALL", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend captures the figures
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, os.environ.get(name, "1"))
    # run the kernel on this interpreter (the virtualenv), whatever kernels are installed elsewhere
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    spec_dir = tmp_path / "jupyter" / "kernels" / "genlab-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        '{"argv": [%r, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "genlab", "language": "python"}'
        .replace("%r", '"' + sys.executable.replace("\\", "\\\\") + '"'))
    assert "genlab-test" in KernelSpecManager().find_kernel_specs()

    notebook = jupytext.read(path)
    assert len(notebook.cells) >= 4 and any(c.cell_type == "markdown" for c in notebook.cells)
    client = NotebookClient(notebook, timeout=300, kernel_name="genlab-test", resources={"metadata": {"path": str(REPO)}})
    client.execute()  # raises CellExecutionError on any error in any cell
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, "the notebook drew no figure"
    if path.stem == "tour":
        html = [o["data"]["text/html"] for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
                if "text/html" in o.get("data", {})]
        assert any("<table" in h and "test_mse" in h for h in html), "Results did not display as an HTML table"
