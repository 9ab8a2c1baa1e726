"""CLI contracts: fast start-up (no heavy imports), exit status 2 with one line on bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genlab.cli import main

HEAVY = ("torch", "jax", "neural_tangents", "tensorflow", "numpy")


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from genlab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["demo", "--widths", "64,0"], "argument --widths: expected comma-separated positive ints, got '64,0'"),
        (["demo", "--n", "-3"], "argument --n: expected a positive int, got '-3'"),
        (["demo", "--kind", "mlp"], "argument --kind: invalid choice: 'mlp'"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(argv: list[str], match: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert match in capsys.readouterr().err


def test_demo_prints_the_pairing_table(capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--widths", "32,128", "--n", "6", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "log-log slope of error vs width" in out and "128" in out
