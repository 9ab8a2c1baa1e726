"""README.md's generated blocks (config reference, shipped studies, quantities) equal what
genlab.docs generates from the code now: a new config key, task, study or quantity fails this
test until `python -m genlab.docs --write README.md` is run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from genlab import docs

REPO = Path(__file__).resolve().parents[1].parent
README = REPO / "README.md"


def test_readme_generated_blocks_are_up_to_date() -> None:
    text = README.read_text(encoding="utf-8")
    found = docs.blocks(text)
    assert set(found) == set(docs.SECTIONS), f"README.md lacks generated block(s): {set(docs.SECTIONS) - set(found)}"
    for section in docs.SECTIONS:
        assert found[section] == docs.generate(section, studies_dir=REPO / "studies").replace(str(REPO) + "/", ""), (
            f"README.md block {section!r} is out of date: run `python -m genlab.docs --write README.md`")


def test_reference_lists_every_key_the_schema_accepts() -> None:
    """Independent of the generator's own walk: every field of ArchSpec, TrainSettings and each
    task's dataclass, and every [table]/[regime] key, appears as a row."""
    from genlab.settings import TrainSettings
    from genlab.models import ArchSpec
    from genlab.study._schema import RegimeSettings, TableSettings
    from genlab.tasks import TASKS

    text = docs.reference()
    for cls in (ArchSpec, TrainSettings, *TASKS.values()):
        for f in dataclasses.fields(cls):
            if f.init and f.name not in ("name", "seed"):
                assert f"| `{f.name}` |" in text, (cls.__name__, f.name)
    for model in (TableSettings, RegimeSettings):
        for key in model.model_fields:
            assert f"| `{key}` |" in text, key
    for task in TASKS:
        assert f"#### `{task}`" in text
    assert '| `lr` | float | 0.1 |' in text  # TrainSettings.lr default, as declared


def test_update_replaces_only_the_marked_block() -> None:
    text = "intro\n<!-- BEGIN GENERATED: quantities -->\nstale\n<!-- END GENERATED: quantities -->\noutro\n"
    new = docs.update(text)
    assert new.startswith("intro\n<!-- BEGIN GENERATED: quantities -->\n| quantity |") and new.endswith("<!-- END GENERATED: quantities -->\noutro\n")
    assert "stale" not in new and docs.update(new) == new
