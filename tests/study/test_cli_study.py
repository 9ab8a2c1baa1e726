"""`genlab run | table | studies`: exit status 2 with one line on bad input, nothing written."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import tomli_w

from genlab.cli import main
from genlab.study import _study
from tests.study.conftest import study_dict
from tests.study.fake_cells import calls, fake_cell


@pytest.fixture
def fake_default_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    """`genlab run` uses the fake cell function instead of genlab.study._cell.run_cell."""
    monkeypatch.setattr(_study, "_default_cell_fn", lambda: fake_cell)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_run_prints_config_progress_and_table(write_study: Callable[..., Path], tmp_path: Path, counter: Path,
                                              fake_default_cell: None, capsys: pytest.CaptureFixture) -> None:
    path = write_study()
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"study toy_study ({path}): 8 cells = alpha[2] x width[2] x seed[2]\n")
    assert "  model  kind='fc' depth=1" in captured.out and "width=[8, 16] alpha=[0.1, 10.0]" in captured.out
    assert "feature learning" in captured.out and "0.505 ± 0.0071" in captured.out
    assert "8 cells (0 cached, 8 computed, 0 failed)" in captured.out
    assert "cached 0 · computed 8" in captured.err  # the progress bar
    assert {"config.toml", "results.csv", "results.parquet", "table.md", "provenance.json"} <= set(snapshot(tmp_path / "run"))
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--workers", "1"]) == 0
    assert "8 cells (8 cached, 0 computed, 0 failed)" in capsys.readouterr().out
    assert calls(counter) == 8


def test_run_defaults_to_runs_name(write_study: Callable[..., Path], tmp_path: Path, fake_default_cell: None,
                                   monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    path = write_study(study_dict(grid={"alpha": [1.0]}))
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(path), "--workers", "1"]) == 0
    assert (tmp_path / "runs" / "toy_study" / "table.md").is_file()


def test_run_exits_1_when_a_cell_fails(write_study: Callable[..., Path], tmp_path: Path, fake_default_cell: None,
                                       capsys: pytest.CaptureFixture) -> None:
    path = write_study(study_dict(grid={"width": [8, 13]}))
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "failed: RuntimeError: width 13 is unlucky (see" in err


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (study_dict(model={"depth": 1, "widht": 8}), "model.widht: unknown key (did you mean 'width'?); valid keys: kind,"),
        (study_dict(grid={"width": [8, 0]}), "grid.width[1]: must be >= 1; got 0"),
        (study_dict(train={"lr": -1}), "train.lr: must be a finite float > 0; got -1.0"),
        (study_dict(quantities=["test_mse", "ntk_drfit"]), "quantities[1]: unknown quantity name (did you mean 'ntk_drift'?)"),
    ],
)
def test_bad_config_exits_2_with_one_line_and_writes_nothing(
    write_study: Callable[..., Path], tmp_path: Path, fake_default_cell: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture, data: dict, message: str,
) -> None:
    path = write_study(data)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(path), "--out", str(tmp_path / "new")]) == 2
    assert main(["run", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]
    assert lines[0].startswith(f"genlab run: error: {path}: {message}")
    assert not (tmp_path / "new").exists() and not (tmp_path / "runs").exists()


def test_bad_config_leaves_an_existing_run_untouched(write_study: Callable[..., Path], tmp_path: Path,
                                                     fake_default_cell: None, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    assert main(["run", str(write_study()), "--out", str(out), "--workers", "1"]) == 0
    before = snapshot(out)
    bad = write_study(study_dict(train={"lr": "fast"}), name="bad.toml")
    assert main(["run", str(bad), "--out", str(out)]) == 2
    assert snapshot(out) == before


def test_bad_config_in_a_fresh_process_has_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(study_dict(quantities=["test_mse", "nope"])), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "genlab.cli", "run", str(path), "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.splitlines() == [f"genlab run: error: {path}: quantities[1]: unknown quantity name; valid quantity "
                                       f"names: {out.stderr.split('valid quantity names: ')[1].strip()}"]
    assert "Traceback" not in out.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["run"], "the following arguments are required: STUDY.toml"),
        (["run", "s.toml", "--workers", "0"], "argument --workers: expected a positive int, got '0'"),
        (["run", "s.toml", "--executor", "slurm"], "argument --executor: invalid choice: 'slurm'"),
        (["table", "x", "--format", "html"], "argument --format: invalid choice: 'html'"),
    ],
)
def test_bad_arguments(argv: list[str], match: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert match in capsys.readouterr().err


def test_missing_study_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert capsys.readouterr().err == f"genlab run: error: {tmp_path / 'nope.toml'}: no such file\n"


@pytest.mark.parametrize(("fmt", "first_line"), [("md", "## toy_study"), ("latex", "% toy_study"),
                                                 ("csv", "alpha,width,quantity,theory,empirical,gap,regime")])
def test_table_in_each_format(write_study: Callable[..., Path], tmp_path: Path, counter: Path, fake_default_cell: None,
                              capsys: pytest.CaptureFixture, fmt: str, first_line: str) -> None:
    out = tmp_path / "run"
    assert main(["run", str(write_study()), "--out", str(out), "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["table", str(out), "--format", fmt]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == first_line
    assert ("17 ± 1" if fmt != "latex" else r"8.5 $\pm$ 0.71") in text or "8.5 ± 0.71" in text
    if fmt == "md":
        assert text == (out / "table.md").read_text()
    assert calls(counter) == 8  # nothing recomputed


def test_table_of_a_directory_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["table", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"genlab table: error: {tmp_path} is not a run directory "
                                       "(expected config.toml and cells/ in it)\n")


def test_studies_lists_the_files_of_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "a.toml").write_text(tomli_w.dumps(study_dict(name="alpha_sweep", description="Lazy training.\nMore words.")))
    (folder / "b.toml").write_text(tomli_w.dumps(study_dict(name="width_sweep", description="Kernel drift ~ 1/sqrt(width).")))
    (folder / "broken.toml").write_text("name = ")
    (folder / "notes.txt").write_text("not a study")
    assert main(["studies", "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    for text in ("alpha_sweep", "Lazy training.", "width_sweep", "Kernel drift ~ 1/sqrt(width).", "a.toml", "b.toml", "broken", "unreadable"):
        assert text in out, text
    assert "More words" not in out and "notes" not in out


def test_studies_of_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["studies", "--dir", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"genlab studies: error: argument --dir: {tmp_path / 'none'} is not a directory\n"


def test_studies_and_table_start_without_heavy_imports(tmp_path: Path) -> None:
    code = (
        "import sys, contextlib, io\n"
        "from genlab.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        f"    main(['studies', '--dir', {str(tmp_path)!r}])\n"
        f"    main(['table', {str(tmp_path)!r}])\n"
        "print(sorted(m for m in ('torch', 'jax', 'neural_tangents', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
