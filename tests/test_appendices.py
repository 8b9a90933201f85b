"""The background chapter and the appendices: generated tables hold the right values.

- provenance: one row per manifest entry, with that entry's sha256, URL,
  publisher and licence, grouped by publisher (real manifest and a synthetic
  one through ``$SOS_DATA_MANIFEST``);
- reference lists and the register: counts and sources read from the files;
- pilot profiles: each pilot's comparators are exactly those of
  ``results/matched_pairs.csv`` (synthetic pairs always; the real results when
  computed), the notes say why a pilot is left out, the figure draws the mean
  of the right comparators, and the chapter has one section per pilot of the
  design with two named figures (its series; its own estimate among the
  donors' placebo estimates, whose values ``tests/test_robustness.py`` checks);
- rebuild guide: the Makefile recipes and the ``estimate`` options are read
  from the real files; the environment variables the chapter names are the
  ones the code reads;
- glossary: every required term is defined.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.book import appendices as A
from analysis.book.chapters import design
from analysis.ingest.sources import load_manifest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"


# --------------------------------------------------------------------------- provenance

def test_provenance_has_one_row_per_manifest_entry_with_its_checksum():
    manifest = load_manifest()
    table = A.provenance_table(manifest)
    assert len(table) == len(manifest)
    assert list(table.columns) == A.PROVENANCE_COLUMNS
    assert table["Manifest id"].is_unique
    by_id = table.set_index("Manifest id")
    for sid, src in manifest.items():
        row = by_id.loc[sid]
        assert row["sha256"] == src.sha256 and len(row["sha256"]) == 64
        assert row["URL"] == src.url
        assert row["Publisher"] == src.publisher
        assert row["File"] == Path(src.path).name
        assert row["Release"] == src.release
    # the real manifest's licence is OGL v3.0 throughout
    assert set(table["Licence"]) == {"Open Government Licence v3.0"}


def test_provenance_is_grouped_by_publisher_largest_first():
    table = A.provenance_table()
    pubs = A.publishers(table)
    # each publisher's rows are contiguous
    runs = [p for i, p in enumerate(table["Publisher"]) if i == 0 or p != table["Publisher"].iloc[i - 1]]
    assert runs == pubs
    sizes = table["Publisher"].value_counts()
    assert [sizes[p] for p in pubs] == sorted(sizes.to_numpy(), reverse=True)
    assert pubs[0] == "Department for Education"


def _write_manifest(path: Path, rows: list[dict]) -> None:
    from analysis.ingest.sources import MANIFEST_COLUMNS

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow(r)


def test_provenance_follows_the_manifest_in_use(tmp_path, monkeypatch):
    """A synthetic manifest (``$SOS_DATA_MANIFEST``): rows, order, release month, unknown licence."""
    def row(i, publisher, licence="OGL-UK-3.0", release_date="2024-03"):
        return {"id": f"f{i}", "path": f"owner__repo/dir/file{i}.csv", "title": f"Table {i}",
                "publisher": publisher, "release": f"Release {i}", "licence": licence,
                "url": f"https://raw.githubusercontent.com/owner/repo/{'a' * 40}/dir/file{i}.csv",
                "sha256": f"{i:064x}", "bytes": "10", "release_date": release_date}
    p = tmp_path / "manifest.csv"
    _write_manifest(p, [row(1, "Zeta"), row(2, "Alpha", "CC-BY-4.0", ""), row(3, "Zeta", release_date="2019-12")])
    monkeypatch.setenv("SOS_DATA_MANIFEST", str(p))
    t = A.provenance_table()
    assert t["Manifest id"].tolist() == ["f1", "f3", "f2"]          # Zeta has two files: first
    assert t["Release date"].tolist() == ["March 2024", "December 2019", "not recorded"]
    assert t.loc[t["Manifest id"] == "f2", "Licence"].item() == "CC-BY-4.0"
    assert t.loc[t["Manifest id"] == "f3", "sha256"].item() == f"{3:064x}"
    html = A.provenance_styler(t).to_html()
    assert f"{3:064x}" in html and 'href="https://raw.githubusercontent.com/owner/repo/' in html
    assert "owner/repo at aaaaaaa" in html
    repos = A.repositories_table()
    assert repos.to_dict("records") == [{"Repository": "owner/repo", "Commit": "aaaaaaa", "Files": 3,
                                         "Publishers": "Zeta; Alpha"}]


@pytest.mark.parametrize("value, expected", [
    ("2025-10", "October 2025"), ("2010-09", "September 2010"), ("2024-12-01", "December 2024"),
    ("", "not recorded"), ("2025-13", "2025-13"), ("soon", "soon"),
])
def test_release_month(value, expected):
    assert A.release_month(value) == expected


def test_repository_of():
    url = "https://raw.githubusercontent.com/dfe-analytical-services/CSC_outcomes_and_enablers/2f5d11a4/data-raw/x.csv"
    assert A.repository_of(url) == ("dfe-analytical-services/CSC_outcomes_and_enablers", "2f5d11a4")
    assert A.repository_of("https://example.org/a/b.csv") == ("example.org", "")


def test_repositories_cover_every_file():
    manifest = load_manifest()
    repos = A.repositories_table(manifest)
    assert repos["Files"].sum() == len(manifest)
    assert (repos["Commit"].str.len() == 7).all()


# --------------------------------------------------------------------------- reference lists, register

def test_reference_lists_counts_match_the_files():
    pm = pd.read_csv(A.PRACTICE_MODEL_PATH, dtype=str, keep_default_na=False)
    sif = pd.read_csv(A.SIF_PATH, dtype=str, keep_default_na=False)
    t = A.reference_lists_table().set_index("File")
    assert t.loc["data/reference/practice_model_las.csv", "Rows"] == len(pm)
    assert t.loc["data/reference/practice_model_las.csv", "Local authorities"] == pm["new_la_code"].nunique()
    assert t.loc["data/reference/sif_judgements_from_reports.csv", "Rows"] == len(sif)
    assert A.SIF_REPOSITORY in t.loc["data/reference/sif_judgements_from_reports.csv", "Read from"]


def test_practice_model_sources_are_every_url_of_the_list():
    pm = pd.read_csv(A.PRACTICE_MODEL_PATH, dtype=str, keep_default_na=False)
    src = A.practice_model_sources()
    urls = {u for cell in pm["source"] for u in re.findall(r"https?://[^\s;,)]+", cell) if "/.../" not in u}
    assert set(src["Source"]) == urls
    assert src["Source"].is_unique
    # every pilot row cites the MTM report of wave one or two
    assert src.loc[src["Source"] == "https://munroturnellmurphy.com/eip-report/", "Rows"].item() == \
        int(pm["source"].str.contains("https://munroturnellmurphy.com/eip-report/", regex=False).sum())


def test_register_changes_are_the_flagged_las():
    reg = pd.read_csv(A.REGISTER_PATH, dtype=str, keep_default_na=False)
    t = A.register_changes_table()
    flagged = set(reg.loc[reg["boundary_changed"] == "True", "la_code"])
    assert flagged <= set(t["Code"])
    assert set(t.loc[t["Boundary changed"] == "yes", "Code"]) == flagged
    assert "E06000060" in set(t["Code"])          # Buckinghamshire: code change only
    assert t.loc[t["Code"] == "E06000060", "Boundary changed"].item() == "no"


# --------------------------------------------------------------------------- pilot profiles

def _synthetic_pairs(d) -> pd.DataFrame:
    """Two comparators per pilot and primary outcome, with made-up donors and ranks reversed in file order."""
    rows = []
    outcomes = A.primary_outcomes(d)
    for j, o in enumerate(outcomes):
        for i, p in enumerate(d.pilots):
            if p.la_code not in d.treated(o):
                continue
            for rank in (2, 1):
                code = f"X{j}{i}{rank}"
                rows.append({"treated_code": p.la_code, "treated_name": p.name, "comparator_code": code,
                             "comparator_name": f"Donor {j}-{i}-{rank}", "rank": rank, "distance": 1.0,
                             "mahalanobis": 1.0, "same_region": True, "beyond_caliper": False,
                             "outcome": o.id})
    return pd.DataFrame(rows)


def test_comparators_table_lists_the_matched_pairs_nearest_first():
    d = design()
    pairs = _synthetic_pairs(d)
    notes = pd.DataFrame(columns=["outcome", "specification", "note"])
    outcomes = A.primary_outcomes(d)
    for p in d.pilots:
        t = A.comparators_table(p.la_code, pairs=pairs, notes=notes, design=d)
        assert t["Outcome"].tolist() == [o.label for o in outcomes]
        for (_, row), o in zip(t.iterrows(), outcomes):
            expected = pairs[(pairs["treated_code"] == p.la_code) & (pairs["outcome"] == o.id)]
            expected = expected.sort_values("rank")["comparator_name"].tolist()
            assert row["Matched comparators"] == ("; ".join(expected) or "none")
            first = d.treated(o).get(p.la_code)
            assert row["First treated year"] == (str(first) if first else "–")


def test_a_pilot_not_treated_under_the_onset_is_explained():
    d = design()
    wave1_only = [p for p in d.pilots if p.waves == ("wave1",)]
    wave2_outcomes = [o for o in A.primary_outcomes(d) if d.onset_for(o) == "wave2"]
    if not wave1_only or not wave2_outcomes:
        pytest.skip("the design has no wave-one-only pilot or no wave-two primary outcome")
    t = A.comparators_table(wave1_only[0].la_code, wave2_outcomes, pairs=_synthetic_pairs(d),
                            notes=pd.DataFrame(columns=["outcome", "specification", "note"]), design=d)
    assert t["Matched comparators"].tolist() == ["none"] * len(wave2_outcomes)
    assert all(n.startswith("Not treated under this outcome's wave two onset") for n in t["Note"])


def test_a_pilot_left_out_for_missing_data_is_explained():
    d = design()
    o = A.primary_outcomes(d)[-1]
    p = next(p for p in d.pilots if p.la_code in d.treated(o))
    pairs = _synthetic_pairs(d)
    pairs = pairs[~((pairs["treated_code"] == p.la_code) & (pairs["outcome"] == o.id))]
    from analysis.book.chapters import la_names

    name = la_names()[p.la_code]
    notes = pd.DataFrame([{"outcome": o.id, "specification": "main",
                           "note": f"{name} has no published {o.measure} in the pre-period (2013-2014) "
                                   "and is left out of this outcome"}])
    t = A.comparators_table(p.la_code, [o], pairs=pairs, notes=notes, design=d)
    assert t["Matched comparators"].item() == "none"
    assert t["Note"].item() == "Left out of this outcome: no published value in the pre-period (2013–2014)"


def test_comparators_overview_matches_pairs():
    d = design()
    pairs = _synthetic_pairs(d)
    ov = A.comparators_overview(pairs=pairs, design=d).set_index("Pilot")
    for o in A.primary_outcomes(d):
        for p in d.pilots:
            comps = pairs[(pairs["treated_code"] == p.la_code) & (pairs["outcome"] == o.id)]
            want = "; ".join(comps.sort_values("rank")["comparator_name"]) or "–"
            assert ov.loc[p.name, o.label] == want


@pytest.mark.integration
def test_each_profile_shows_the_real_matched_pairs(real_results):
    d = design()
    pairs = pd.read_csv(real_results / "matched_pairs.csv")
    for p in d.pilots:
        t = A.comparators_table(p.la_code).set_index("Outcome")
        for o in A.primary_outcomes(d):
            mine = pairs[(pairs["treated_code"] == p.la_code) & (pairs["outcome"] == o.id)].sort_values("rank")
            assert A.matched_comparators(pairs, p.la_code, o.id) == mine["comparator_code"].tolist()
            assert t.loc[o.label, "Matched comparators"] == ("; ".join(mine["comparator_name"]) or "none")
            if mine.empty:
                assert t.loc[o.label, "Note"], f"{p.name} has no comparators for {o.id} and no reason"
            else:
                assert len(mine) == d.matching.k


def _panel_for(d, pairs: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    codes = sorted(set(pairs["treated_code"]) | set(pairs["comparator_code"]))
    measures = [o.measure for o in A.primary_outcomes(d)]
    rows = [{"la_code": c, "year": y, **{m: float(rng.uniform(5, 50)) for m in measures}}
            for c in codes for y in range(2011, 2026)]
    return pd.DataFrame(rows)


def test_profile_figure_draws_each_outcomes_own_comparators():
    d = design()
    pairs = _synthetic_pairs(d)
    panel = _panel_for(d, pairs)
    outcomes = A.primary_outcomes(d)
    pilot = next(p for p in d.pilots if all(p.la_code in d.treated(o) for o in outcomes))
    fig = A.profile_figure(pilot.la_code, panel=panel, pairs=pairs, design=d)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == len(outcomes)
    for ax, o in zip(axes, outcomes):
        comps = A.matched_comparators(pairs, pilot.la_code, o.id)
        lines = {ln.get_gid(): ln for ln in ax.get_lines()}
        assert {f"comparator:{c}" for c in comps} <= set(lines)
        years = np.arange(o.first_year, o.last_year + 1)
        mean = panel[panel["la_code"].isin(comps) & panel["year"].isin(years)].groupby("year")[o.measure].mean()
        np.testing.assert_allclose(lines["comparators"].get_ydata(), mean.reindex(years).to_numpy())
        own = panel[(panel["la_code"] == pilot.la_code) & panel["year"].isin(years)][o.measure]
        np.testing.assert_allclose(lines["pilot"].get_ydata(), own.to_numpy())
        onset = d.treated(o)[pilot.la_code]
        assert lines["onset"].get_xdata()[0] == pytest.approx(onset - 0.5)


def test_profile_figure_without_comparators_says_so():
    d = design()
    pairs = _synthetic_pairs(d)
    panel = _panel_for(d, pairs)
    o = A.primary_outcomes(d)[0]
    p = d.pilots[0]
    pairs = pairs[~((pairs["treated_code"] == p.la_code) & (pairs["outcome"] == o.id))]
    fig = A.profile_figure(p.la_code, [o], panel=panel, pairs=pairs, design=d)
    ax = fig.axes[0]
    assert "comparators" not in {ln.get_gid() for ln in ax.get_lines()}
    assert "not in this outcome's analysis" in ax.get_title(loc="left")


def test_profile_markdown_states_waves_experience_and_sources():
    d = design()
    for p in d.pilots:
        text = A.profile_markdown(p.la_code, design=d)
        assert text.startswith(f"**{p.name}** ({p.la_code}")
        for w in p.waves:
            assert A.WAVE_WORDS[w] in text
        assert p.prior_sos.split(";")[0].strip().rstrip(".")[1:] in text
        for url in re.findall(r"https?://[^\s;,)]+", p.source):
            assert f"]({url})" in text


def test_profiles_chapter_has_one_section_and_figure_per_pilot():
    text = (CHAPTERS / "appendix_profiles.md").read_text(encoding="utf-8")
    d = design()
    headings = re.findall(r"(?m)^## (.+)$", text)
    assert headings == [p.name for p in d.pilots]
    for p in d.pilots:
        assert text.count(f"name: fig-profile-{p.la_code}") == 1
        assert f'appendices.profile_figure("{p.la_code}")' in text
        assert f'appendices.show_comparators("{p.la_code}")' in text
        assert f"{{glue:md}}`profile_{p.la_code}`" in text
        # its own estimates (issue 15.4): how noisy, the table, the placebo figure
        assert f"{{glue:md}}`profile_noise_{p.la_code}`" in text
        assert f'appendices.show_pilot_estimates("{p.la_code}")' in text
        assert text.count(f"name: fig-placebo-{p.la_code}") == 1
        assert f'robustness.placebo_plot("{p.la_code}")' in text
    # every figure cell has a caption and alt text
    n_figures = text.count("name: fig-profile-") + text.count("name: fig-placebo-")
    assert text.count("caption: |") == n_figures == text.count("alt: ") == 2 * len(d.pilots)


# --------------------------------------------------------------------------- rebuild guide

def test_make_targets_are_read_from_the_makefile():
    targets = A.make_targets()
    for t in ("report", "test", "pdf"):
        assert targets.get(t), f"make {t} has no recipe"
    assert any("jupyter-book build" in c or "analysis build" in c for c in targets["report"])
    assert all("$(PY)" not in c for cmds in targets.values() for c in cmds)
    table = A.make_targets_table()
    assert table["Command"].tolist()[:3] == ["<code>make report</code>", "<code>make test</code>",
                                             "<code>make pdf</code>"]


def test_make_targets_joins_continued_lines(tmp_path):
    mk = tmp_path / "Makefile"
    mk.write_text("PY := .venv/bin/python\n\nall: x\n\t@echo a \\\n\t  b\n\t$(PY) -m analysis data\n"
                  "$(STAMP): y\n\ttouch z\n", encoding="utf-8")
    assert A.make_targets(mk) == {"all": ["echo a b", ".venv/bin/python -m analysis data"]}


def test_make_target_comments(tmp_path):
    mk = tmp_path / "Makefile"
    mk.write_text("# header\n\nPY := python\n\n# Build it\n# all of it.\nall: x\n\techo a\n\n"
                  "other:\n\techo b\n", encoding="utf-8")
    assert A.make_target_comments(mk) == {"all": "Build it all of it.", "other": ""}


def test_cli_options_of_estimate():
    t = A.cli_options_table("estimate")
    options = " ".join(t["Option"])
    for flag in ("--outcome", "--unit", "--time", "--first-treated", "--estimator", "--json"):
        assert flag in options
    req = dict(zip(t["Option"].str.split().str[0], t["Required"]))
    assert req["--outcome"] == "yes" and req["--json"] == "no" and req["PANEL.csv"] == "yes"


def test_cli_commands_are_read_from_the_parser():
    t = A.cli_commands_table()
    names = [c.split()[-1] for c in t["Command"]]
    for cmd in ("fetch", "data", "results", "estimate"):
        assert cmd in names
    assert (t["What it does"].str.len() > 0).all()


def test_rebuild_chapter_names_only_existing_commands():
    text = (CHAPTERS / "appendix_rebuild.md").read_text(encoding="utf-8")
    named = set(re.findall(r"python -m analysis ([a-z][a-z-]*)", text))
    names = {c.split()[-1] for c in A.cli_commands_table()["Command"]}
    assert named and named <= names, named - names


def test_rebuild_chapter_names_the_variables_the_code_reads():
    text = (CHAPTERS / "appendix_rebuild.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(SOS_DATA_[A-Z_]+)`", text))
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "analysis").rglob("*.py"))
    read = set(re.findall(r"os\.environ\.get\(\"(SOS_DATA_[A-Z_]+)\"", code))
    assert named == read == {"SOS_DATA_MIRROR", "SOS_DATA_BASE_URL", "SOS_DATA_CACHE", "SOS_DATA_MANIFEST"}


# --------------------------------------------------------------------------- glossary and TOC

GLOSSARY_TERMS = [
    "Children in need", "Child protection plan", "Section 47 enquiry", "Looked after", "Kinship care",
    "Special guardianship order", "Re-referral", "LAIT", "SSDA903", "SIF", "ILACS",
    "Difference-in-differences", "Matching", "Mahalanobis distance", "Standardised mean difference",
    "Event study", "Parallel trends", "Staggered adoption", "Wild cluster bootstrap",
    "Randomization inference", "Cluster-robust standard error", "Evidence strength", "Suppression",
    "Reporting year", "Upper-tier local authority", "Donor pool",
]


def test_glossary_defines_every_term():
    text = (CHAPTERS / "appendix_glossary.md").read_text(encoding="utf-8")
    body = text.split("```{glossary}", 1)[1].split("\n```", 1)[0]
    terms = re.findall(r"(?m)^([^\s:][^\n]*)$", body)
    assert set(GLOSSARY_TERMS) <= set(terms)
    # every {term} reference points to a defined term (case-insensitive, as Sphinx resolves them)
    refs = {r.lower() for r in re.findall(r"\{term\}`([^`]+)`", text)}
    assert refs <= {t.lower() for t in terms}


def test_appendices_are_in_the_toc_before_references():
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    parts = {p["caption"]: [c["file"] for c in p["chapters"]] for p in toc["parts"]}
    captions = [p["caption"] for p in toc["parts"]]
    assert captions.index("Background") < captions.index("Data")
    assert parts["Background"] == ["chapters/background"]
    app = parts["Appendices"]
    assert app[-1] == "chapters/references"
    for f in ("chapters/appendix_provenance", "chapters/appendix_profiles",
              "chapters/appendix_glossary", "chapters/appendix_rebuild"):
        assert f in app[:-1]
