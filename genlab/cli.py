"""The ``genlab`` command line.

Start-up imports only the standard library: torch, jax and neural-tangents are imported by the
subcommand that needs them. Bad arguments exit with status 2 and one line naming the argument.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from genlab import __version__

if TYPE_CHECKING:  # rich, numpy and the models are imported by the subcommands that use them
    from typing import TypeAlias

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from genlab.models import ArchSpec

    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


class UsageError(Exception):
    """A bad argument value found after parsing; printed as one line, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def _positive_ints(text: str) -> list[int]:
    parts = [part.strip() for part in text.split(",")]
    try:
        return [_positive_int(part) for part in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive ints, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The ``genlab`` parser: one subparser per subcommand, each added by its own builder."""
    parser = argparse.ArgumentParser(
        prog="genlab",
        description="Theory-experiment workbench: infinite-width kernel predictions beside finite-width measurements.",
    )
    parser.add_argument("--version", action="version", version=f"genlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_demo, _add_run, _add_table, _add_plot, _add_studies, _add_paper, _add_train_parallel):
        add(commands)
    return parser


def _add_demo(commands: _Subparsers) -> None:
    demo = commands.add_parser(
        "demo",
        help="pairing demo: the empirical NTK of finite networks converges to the analytic NTK of the same spec",
        description=(
            "Build one ArchSpec, realise it as torch networks of growing width and as its neural-tangents "
            "kernel, and print the relative Frobenius distance between the empirical and analytic NTK "
            "(theory: ~ width^-1/2)."
        ),
    )
    demo.add_argument("--kind", choices=("fc", "conv1d", "conv2d"), default="fc")
    demo.add_argument("--activation", choices=("relu", "erf", "gelu", "identity"), default="relu")
    demo.add_argument("--parametrization", choices=("ntk", "standard"), default="ntk")
    demo.add_argument("--depth", type=_positive_int, default=2)
    demo.add_argument("--widths", type=_positive_ints, default=[64, 256, 1024, 4096], help="comma-separated (default 64,256,1024,4096)")
    demo.add_argument("--n", type=_positive_int, default=32, help="number of inputs (default 32)")
    demo.add_argument("--seeds", type=_positive_int, default=3, help="networks per width (default 3)")
    demo.add_argument("--seed", type=int, default=0, help="first network seed; inputs use this seed too (default 0)")


def _add_run(commands: _Subparsers) -> None:
    run = commands.add_parser(
        "run",
        help="run a study: compute the cells not cached in the run directory, print the side-by-side table",
        description=(
            "Validate STUDY.toml, print the resolved config, compute every grid cell that is not cached in the "
            "run directory (cells are keyed by the content hash of their resolved config), write results.csv, "
            "results.parquet, table.md and provenance.json, and print the theory-beside-empirical table."
        ),
    )
    run.add_argument("study", metavar="STUDY.toml", help="study config")
    run.add_argument("--out", metavar="DIR", help="run directory (default runs/<name>)")
    run.add_argument("--workers", type=_positive_int, default=None, help="worker processes (default: the number of CPUs)")
    run.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="where cells run: local worker processes, or one Ray task per cell (default local)")
    run.add_argument("--address", metavar="ADDR", default=None,
                     help="Ray cluster address for --executor ray (default: start a local Ray instance)")


def _add_table(commands: _Subparsers) -> None:
    table = commands.add_parser(
        "table",
        help="re-render the table of a run directory without computing anything",
        description="Read the cells of RUN_DIR back and print the side-by-side table.",
    )
    table.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `genlab run`")
    table.add_argument("--format", choices=("md", "latex", "csv"), default="md", help="output format (default md)")


def _add_plot(commands: _Subparsers) -> None:
    plot = commands.add_parser(
        "plot",
        help="save the figures of a run directory (PNG and PDF) without computing anything",
        description="For every quantity that recorded curves (or the one given), save RUN_DIR/figures/<quantity>.png and .pdf: "
        "measurements as markers, theory as lines; without --quantity also the views across cells the run stored data for "
        "(trajectory_plane, solution_barriers, loss_planes).",
    )
    plot.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `genlab run`")
    plot.add_argument("--quantity", default=None, help="only this quantity (default: every quantity with curves)")


def _add_studies(commands: _Subparsers) -> None:
    studies = commands.add_parser(
        "studies",
        help="list the study configs in a folder",
        description="List the study configs (*.toml) in a folder: name, file, first line of the description.",
    )
    studies.add_argument("--dir", default="studies", help="folder of study configs (default studies)")


def _add_paper(commands: _Subparsers) -> None:
    paper = commands.add_parser(
        "paper",
        help="rebuild the paper's figures and tables from their studies (cached cells reused)",
        description="Run (or read back from the cell cache) the study of every figure and table declared in "
        "paper/paper.toml, then write paper/build/figures/<name>.pdf|png and paper/build/tables/<name>.tex|md, "
        "each with <name>.provenance.json. Files whose content is unchanged are not rewritten.",
    )
    paper.add_argument("--config", default="paper/paper.toml", metavar="PAPER.toml", help="paper config (default paper/paper.toml)")
    paper.add_argument("--draft", action="store_true", help="use each entry's reduced draft grid (quick build)")
    paper.add_argument("--only", action="append", metavar="NAME", help="only this figure or table (repeatable)")
    paper.add_argument("--workers", type=_positive_int, default=None, help="worker processes (default: the number of CPUs)")


def _add_train_parallel(commands: _Subparsers) -> None:
    """``train-parallel``: the parallel optimizers on torch.distributed (genlab.parallel)."""
    tp = commands.add_parser(
        "train-parallel",
        help="train with EASGD, Leader SGD, local or data-parallel SGD on N torch.distributed workers",
        description="Run the parallel optimizer(s) of CONFIG.toml ([task], [model], [parallel], optional [sweep]) as "
        "groups of worker processes (gloo on CPU, nccl on GPUs); write per-round center loss, spread and sharpness "
        "(rounds.csv per run), summary.csv, table.md and figure.png to the run directory.",
    )
    tp.add_argument("config", metavar="CONFIG.toml", help="train-parallel config")
    tp.add_argument("--nproc", type=_positive_int, default=None, help="workers per run (default: sweep.nproc, else 1)")
    tp.add_argument("--out", metavar="DIR", help="run directory (default runs/<name>)")
    tp.add_argument("--launcher", choices=("torchrun", "spawn"), default="torchrun",
                    help="torchrun (elastic agent, restarts from the saved center) or spawn (default torchrun)")
    tp.add_argument("--max-restarts", type=int, default=3, help="torchrun --max-restarts (default 3)")


#: Input shape of the demo's Gaussian inputs per architecture kind.
_DEMO_SHAPES = {"fc": (16,), "conv1d": (16, 2), "conv2d": (6, 6, 2)}


def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from genlab.models import ArchSpec, SpecError

    console = Console()
    try:
        spec = ArchSpec(
            kind=args.kind, depth=args.depth, activation=args.activation, parametrization=args.parametrization,
            w_std=1.4, b_std=0.1,
        )
    except SpecError as exc:
        raise UsageError(str(exc)) from None
    shape = _DEMO_SHAPES[args.kind]
    console.print(f"[bold]Pairing demo[/bold]: {spec}")
    console.print(f"{args.n} Gaussian inputs of shape {shape}, {args.seeds} networks per width, float64\n")
    table, errors = _demo_table(spec, args, shape, console)
    console.print(table)
    if len(args.widths) > 1:
        import numpy as np

        slope = np.polyfit(np.log(args.widths), np.log(errors), 1)[0]
        console.print(f"log-log slope of error vs width: {slope:.2f}  (theory: -0.5)")
    return 0


def _demo_table(spec: ArchSpec, args: argparse.Namespace, shape: tuple[int, ...],
                console: Console) -> tuple[Table, list[float]]:
    """One row per width: the median over seeds of ||K_emp - K|| / ||K|| (Frobenius), and the errors."""
    import time

    import numpy as np
    from rich.table import Table

    x = np.random.default_rng(args.seed).normal(size=(args.n, *shape))
    table = Table(title="empirical NTK (torch) vs analytic NTK (neural-tangents)")
    for column in ("width", "median rel. Frobenius error", "sqrt(width) x error", "seconds"):
        table.add_column(column, justify="right")
    errors = []
    with console.status("computing") as status:
        for width in args.widths:
            status.update(f"width {width}")
            start = time.perf_counter()
            error = _demo_error(spec, x, width, range(args.seed, args.seed + args.seeds))
            errors.append(error)
            table.add_row(str(width), f"{error:.4f}", f"{error * np.sqrt(width):.2f}", f"{time.perf_counter() - start:.2f}")
    return table, errors


def _demo_error(spec: ArchSpec, x: np.ndarray, width: int, seeds: range) -> float:
    """Median over ``seeds`` of the relative Frobenius distance of the empirical NTK to the analytic one."""
    import numpy as np
    import torch

    from genlab.kernels import analytic_kernel, empirical_ntk

    reference = analytic_kernel(spec, x, width=width)
    per_seed = []
    for seed in seeds:
        net = spec.to_torch(width, input_shape=tuple(x.shape[1:]), seed=seed, dtype=torch.float64)
        per_seed.append(np.linalg.norm(empirical_ntk(net, x) - reference) / np.linalg.norm(reference))
    return float(np.median(per_seed))


def _console() -> Console:
    """A rich console on stdout; wide when stdout is not a terminal, so that tables are not cropped."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genlab.study import StudyConfigError, load

    try:
        study = load(args.study)
    except StudyConfigError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out) if args.out is not None else study.default_run_dir()
    if out.exists() and not out.is_dir():
        raise UsageError(f"argument --out: {out} exists and is not a directory")
    if args.address is not None and args.executor != "ray":
        raise UsageError("argument --address: only used with --executor ray")
    print(study.describe())
    print(f"  out    {out}")
    from genlab.study import RunInterrupted

    try:
        results = study.run(out=out, workers=args.workers, executor=args.executor, progress=True, address=args.address)
    except RunInterrupted as stop:
        print(f"{stop}; workers stopped. Run the same command again to resume (finished cells are reused).",
              file=sys.stderr)
        return 130
    _console().print(results)
    cells = results.cells
    computed = int((~cells["cached"]).sum())
    print(f"{len(cells)} cells ({len(cells) - computed} cached, {computed} computed, {len(results.failed)} failed) -> {out}")
    for ident in results.failed:
        error = (results.error(ident) or "").strip().splitlines()
        print(f"cell {ident} failed: {error[-1] if error else 'unknown error'} (see {out / 'cells' / (ident + '.json')})",
              file=sys.stderr)
    return 1 if results.failed else 0


def _table(args: argparse.Namespace) -> int:
    from genlab.study import RunDirError, StudyConfigError, open_run

    try:
        results = open_run(args.run_dir)
    except (RunDirError, StudyConfigError) as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.write(results.render(args.format))
    return 0


def _plot(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from genlab.study import RunDirError, StudyConfigError, open_run
    from genlab.study.plots import curve_quantities, plot_curves

    try:
        results = open_run(args.run_dir)
    except (RunDirError, StudyConfigError) as exc:
        raise UsageError(str(exc)) from None
    available = curve_quantities(results)
    if args.quantity is not None and args.quantity not in available:
        raise UsageError(f"--quantity must be one with curves in this run ({', '.join(available) or 'none'}); got {args.quantity!r}")
    from genlab.study.landscape_views import VIEWS, available_views

    folder = Path(args.run_dir) / "figures"
    folder.mkdir(exist_ok=True)
    figures = [(quantity, lambda q=quantity: plot_curves(results, q)) for quantity in ([args.quantity] if args.quantity else available)]
    if args.quantity is None:  # views across cells: shared trajectory plane, barriers, loss slices
        figures += [(view, lambda v=view: VIEWS[v](results)) for view in available_views(results)]
    for name, draw in figures:
        figure = draw()
        for suffix in (".png", ".pdf"):
            with tempfile.NamedTemporaryFile(dir=folder, suffix=suffix, delete=False) as handle:
                figure.savefig(handle.name, dpi=200)
            Path(handle.name).replace(folder / f"{name}{suffix}")
        import matplotlib.pyplot as plt

        plt.close(figure)
        print(folder / f"{name}.png")
    return 0


def _studies(args: argparse.Namespace) -> int:
    import tomllib
    from pathlib import Path

    from rich.table import Table
    from rich.text import Text

    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"argument --dir: {folder} is not a directory")
    table = Table(title=f"studies in {folder}")
    for column in ("name", "file", "description"):
        table.add_column(column, overflow="fold")
    for path in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            name = str(data.get("name", path.stem))
            lines = str(data.get("description", "")).strip().splitlines()
            description = lines[0] if lines else ""
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            name, description = path.stem, f"(unreadable: {str(exc).splitlines()[0]})"
        table.add_row(Text(name), Text(str(path)), Text(description))
    _console().print(table)
    return 0


def _paper(args: argparse.Namespace) -> int:
    from genlab.paper import PaperConfigError, build, load_paper
    from genlab.study import StudyConfigError

    try:
        paper = load_paper(args.config)
        written = build(paper, draft=args.draft, only=args.only, workers=args.workers, progress=True, log=print)
    except (PaperConfigError, StudyConfigError) as exc:
        raise UsageError(str(exc)) from None
    changed = sum(wrote for w in written for wrote in w.files.values())
    total = sum(len(w.files) for w in written)
    print(f"{len(written)} outputs: {changed} of {total} files written, {total - changed} unchanged -> {paper.build_dir}")
    return 0


def _train_parallel(args: argparse.Namespace) -> int:
    from pathlib import Path

    from genlab.parallel import ConfigError, train_parallel

    if args.max_restarts < 0:
        raise UsageError(f"argument --max-restarts: expected an int >= 0, got {args.max_restarts}")
    data = _read_config_argument(args.config)
    out = Path(args.out) if args.out else Path("runs") / str(data.get("name", Path(args.config).stem))
    if out.exists() and not out.is_dir():
        raise UsageError(f"argument --out: {out} exists and is not a directory")
    try:
        summary = train_parallel(data, out, nproc=args.nproc, launcher=args.launcher, max_restarts=args.max_restarts,
                                 progress=True, source=args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    print((out / "table.md").read_text(encoding="utf-8"), end="")
    print(f"{len(summary)} runs -> {out} (rounds.csv per run, summary.csv, table.md, figure.png)")
    return 0


def _read_config_argument(path: str) -> dict[str, Any]:
    """The parsed TOML of the CONFIG.toml argument; a UsageError if it cannot be read or parsed."""
    import tomllib
    from pathlib import Path

    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"argument CONFIG.toml: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"argument CONFIG.toml: {path} is not valid TOML: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    # OpenMP threads that spin-wait collapse when another process takes a core (torch training
    # measured 13x slower with 2 threads on a busy 2-core machine); passive waiting costs nothing
    # on a quiet one. Must be set before torch loads; spawned workers inherit it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return {"demo": _demo, "run": _run, "table": _table, "plot": _plot, "studies": _studies,
                "paper": _paper, "train-parallel": _train_parallel}[args.command](args)
    except UsageError as exc:
        print(f"genlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside a study's cells (those report what finished)
        print(f"genlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
