"""``train_parallel``: every run of a config, then the run directory's summary, table and figure."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genlab.parallel._config import ConfigError, parse_config
from genlab.parallel._launch import LAUNCHERS, run_cached
from genlab.study._schema import StudyConfigError, read_toml
from genlab.study._store import atomic_write

if TYPE_CHECKING:
    import pandas as pd


def train_parallel(config: dict[str, Any] | str | Path, out: str | Path, *, nproc: int | None = None,
                   launcher: str = "torchrun", max_restarts: int = 3, progress: bool = False,
                   source: str = "<config>") -> pd.DataFrame:
    """Run every (method, nproc) of a config and write the run directory; returns the summary.

    Args:
        config: the parsed TOML (dict) or a path to it.
        out: run directory; finished runs with an identical resolved config are reused.
        nproc: worker count for every run (overrides ``sweep.nproc``).
        launcher: "torchrun" (elastic agent) or "spawn" (torch.multiprocessing).
        max_restarts: torchrun's ``--max-restarts``.
        progress: print one line per run.
        source: how errors name a config given as a dict (a path names itself).

    Returns:
        A pandas DataFrame, one row per run (``summary.csv``).

    Raises:
        ConfigError: the config is invalid (one line naming the key); nothing is written.
    """
    import pandas as pd

    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {', '.join(LAUNCHERS)}; got {launcher!r}")
    cfg = _parse(config, nproc, source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    results = []
    for method, n in cfg["runs"]:
        result, fresh = run_cached(cfg, method, n, out / f"{method}-p{n}", launcher=launcher, max_restarts=max_restarts)
        results.append(result)
        if progress:
            print(f"{method:>13} p={n}: test error {result['test_error']:.4f}  sharpness {result['sharpness']:.3f}  "
                  f"rounds {result['rounds']}  wall {result['wall_seconds']:.1f} s" + ("" if fresh else "  (cached)"))
    summary = pd.DataFrame(results)
    summary.to_csv(out / "summary.csv", index=False)
    _write_report(out, cfg, summary)
    return summary


def _parse(config: dict[str, Any] | str | Path, nproc: int | None, source: str) -> dict[str, Any]:
    """The resolved config of a dict or of a TOML file (a file that cannot be read: ConfigError)."""
    if isinstance(config, dict):
        return parse_config(config, nproc=nproc, source=source)
    try:
        data = read_toml(config)
    except StudyConfigError as exc:
        raise ConfigError(exc.source, exc.key, exc.message) from None
    return parse_config(data, nproc=nproc, source=str(config))


def _write_report(out: Path, cfg: dict[str, Any], summary: pd.DataFrame) -> None:
    """``table.md`` and ``figure.png`` (written atomically) from the summary and every run's ``rounds.csv``."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from genlab.parallel._report import plot_rounds, summary_markdown

    (out / "table.md").write_text(summary_markdown(summary, name=cfg["name"], description=cfg["description"]),
                                  encoding="utf-8")
    runs = [(str(m), int(n)) for m, n in zip(summary["method"], summary["nproc"])]
    rounds = {(m, n): pd.read_csv(out / f"{m}-p{n}" / "rounds.csv") for m, n in runs}
    figure = plot_rounds(rounds)
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=120, format="png")
    plt.close(figure)
    atomic_write(out / "figure.png", buffer.getvalue())
