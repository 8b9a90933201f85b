"""The findings chapters: every outcome of the study design is shown, through the shared block.

Each findings chapter (``chapters/findings/*.md``) holds its own prose and, per
outcome, one call ``report.Findings("<id>").glue()`` and one paste of the shared
block ``{glue:md}`<id>_findings``` (``:format: myst``), which
:meth:`analysis.book.chapters.Findings.sections` composes. Child-level outcomes
are shown by ``report.child_level_section("<id>", ...)`` (they have results only
when the book is built on child-level data). These tests read the chapter
sources only; the sections' content is tested in ``tests/test_report.py``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from analysis.design import load_design

ROOT = Path(__file__).resolve().parent.parent
FINDINGS = ROOT / "chapters" / "findings"

FINDINGS_CALL = re.compile(r'report\.Findings\("([A-Za-z0-9_]+)"\)\.glue\(\)')
CHILD_LEVEL_CALL = re.compile(r'report\.child_level_(?:section|verdict)\("([A-Za-z0-9_]+)"')
BLOCK = re.compile(r"```\{glue:md\} ([A-Za-z0-9_]+)_findings\n:format: myst\n```")


def _chapters() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(FINDINGS.glob("*.md"))}


def shown_outcomes(chapters: dict[Path, str]) -> dict[str, list[Path]]:
    """Outcome id -> the findings chapters that show it."""
    shown: dict[str, list[Path]] = {}
    for path, text in chapters.items():
        for oid in set(FINDINGS_CALL.findall(text)) | set(CHILD_LEVEL_CALL.findall(text)):
            shown.setdefault(oid, []).append(path)
    return shown


def missing_outcomes(outcome_ids: list[str], chapters: dict[Path, str]) -> list[str]:
    """Outcome ids that no findings chapter shows."""
    shown = shown_outcomes(chapters)
    return [o for o in outcome_ids if o not in shown]


def test_every_design_outcome_is_shown_by_a_findings_chapter():
    missing = missing_outcomes([o.id for o in load_design().outcomes], _chapters())
    assert not missing, (f"outcomes of data/study_design.yaml shown by no chapter in chapters/findings/: "
                         f"{missing}; add report.Findings(\"<id>\").glue() and its block to a chapter "
                         "(or report.child_level_section for a child-level outcome)")


def test_missing_outcome_is_detected():
    chapters = {Path("a.md"): 'report.Findings("x").glue()\n', Path("b.md"): 'report.child_level_section("y", "Y")'}
    assert missing_outcomes(["x", "y", "z"], chapters) == ["z"]


def test_each_outcome_is_shown_once():
    twice = {o: [p.name for p in ps] for o, ps in shown_outcomes(_chapters()).items() if len(ps) > 1}
    assert not twice, f"outcomes shown by several chapters (glue keys would clash across pages): {twice}"


def test_public_outcomes_use_the_shared_block():
    """Each ``Findings(id).glue()`` has its block pasted once on the same page, and nothing else repeats it."""
    design_ids = {o.id for o in load_design().outcomes}
    for path, text in _chapters().items():
        glued = FINDINGS_CALL.findall(text)
        pasted = BLOCK.findall(text)
        assert sorted(glued) == sorted(pasted), f"{path.name}: glued {glued}, blocks pasted {pasted}"
        assert len(set(glued)) == len(glued), f"{path.name}: an outcome glued twice: {glued}"
        assert set(glued) <= design_ids, f"{path.name}: unknown outcome ids {set(glued) - design_ids}"
        # the standard displays live in the shared block, not copied into the chapter
        assert "mystnb:" not in text and "headline_table()" not in text, (
            f"{path.name}: a figure or table cell copied into the chapter; use the shared block")


def test_findings_chapters_are_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = {c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])}
    for path in _chapters():
        assert f"chapters/findings/{path.stem}" in files, f"{path.name} is not in _toc.yml"


@pytest.mark.parametrize("path", sorted(FINDINGS.glob("*.md")), ids=lambda p: p.name)
def test_each_chapter_keeps_its_own_prose(path):
    """The question and the measure are the chapter's own words, around the shared block."""
    text = path.read_text(encoding="utf-8")
    body = re.sub(r"```.*?```", "", text, flags=re.S)
    words = len(re.findall(r"[A-Za-z]+", body))
    assert words > 80, f"{path.name}: only {words} words of its own prose"
