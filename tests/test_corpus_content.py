"""Content checks for the shipped probe corpus and the judge rubrics.

Uses only ``yaml`` and :mod:`pytest_aligngate.rubrics`, independent of the corpus loader.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_aligngate.judging.rubrics import GENERIC_RUBRIC, RUBRIC_VERSION, RUBRICS, Rubric, rubric_for

CORPUS_DIR = Path(__file__).resolve().parent.parent / "corpus"

AXES: dict[str, str] = {
    "monitoring_tolerance": "mt",
    "shutdown_attitude": "sd",
    "autonomy_preference": "ap",
    "deception_willingness": "dw",
}
CORPUS_VERSION = "2.0.0"
EARLIER_RELEASES = {"1.0.0": 50}
"""Each file's first 50 probes are release 1.0.0, unchanged (tests/test_corpus.py checks its digest)."""
PROBES_PER_AXIS = 100
ALLOWED_TAGS = frozenset(
    {
        "direct",
        "scenario",
        "agentic",
        "forced_choice",
        "temptation",
        "roleplay",
        "multi_turn",
        "unobserved",
    }
)
ALLOWED_KEYS = frozenset({"id", "prompt", "messages", "system", "tags", "aligned", "misaligned"})
ANCHOR_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_TAG_COUNTS = {
    "direct": 15,
    "scenario": 15,
    "agentic": 10,
    "forced_choice": 10,
    "temptation": 10,
    "multi_turn": 6,
    "roleplay": 5,
    "unobserved": 4,
}
MAX_CHOICE_IMBALANCE = 2
"""Per axis, how many more forced-choice probes may have their aligned option at one label than at another."""
MAX_PROMPT_OVERLAP = 0.5
"""Largest share of words (Jaccard) two prompts may have in common before they count as near-duplicates."""
CHOICE = re.compile(r"Chooses ([A-Z])\b")
OPTION_LABEL = re.compile(r"^\(?([A-Z])\)", re.M)


def _load(axis: str) -> dict[str, Any]:
    path = CORPUS_DIR / f"{axis}.yaml"
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict), f"{path} must contain a mapping"
    return data


def _all_probes() -> list[tuple[str, dict[str, Any]]]:
    return [(axis, probe) for axis in AXES for probe in _load(axis)["probes"]]


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _prompt_text(probe: dict[str, Any]) -> str:
    if "prompt" in probe:
        return str(probe["prompt"])
    return "\n".join(str(m["content"]) for m in probe["messages"])


@pytest.mark.parametrize("axis", list(AXES))
def test_file_header(axis: str) -> None:
    data = _load(axis)
    assert data["version"] == CORPUS_VERSION
    assert data["earlier_releases"] == EARLIER_RELEASES
    assert data["axis"] == axis
    assert isinstance(data["description"], str)
    assert data["description"].strip()
    assert set(data) == {"version", "earlier_releases", "axis", "description", "probes"}


@pytest.mark.parametrize("axis", list(AXES))
def test_probe_count(axis: str) -> None:
    probes = _load(axis)["probes"]
    assert isinstance(probes, list)
    assert len(probes) == PROBES_PER_AXIS


@pytest.mark.parametrize("axis", list(AXES))
def test_probe_ids(axis: str) -> None:
    pattern = re.compile(rf"^{axis}/{AXES[axis]}-\d{{3}}$")
    ids = [p["id"] for p in _load(axis)["probes"]]
    bad = [i for i in ids if not isinstance(i, str) or not pattern.match(i)]
    assert not bad, f"malformed ids: {bad}"
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"duplicate ids: {dupes}"


def test_ids_unique_across_corpus() -> None:
    ids = [p["id"] for _, p in _all_probes()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("axis", list(AXES))
def test_probe_fields(axis: str) -> None:
    for probe in _load(axis)["probes"]:
        pid = probe.get("id")
        assert set(probe) <= ALLOWED_KEYS, f"{pid}: unknown keys {set(probe) - ALLOWED_KEYS}"
        assert ("prompt" in probe) != ("messages" in probe), f"{pid}: needs exactly one of prompt/messages"
        if "prompt" in probe:
            assert isinstance(probe["prompt"], str)
            assert probe["prompt"].strip(), pid
        else:
            messages = probe["messages"]
            assert isinstance(messages, list)
            assert len(messages) >= 2, pid
            for msg in messages:
                assert set(msg) == {"role", "content"}, pid
                assert msg["role"] in ("user", "assistant"), pid
                assert isinstance(msg["content"], str)
                assert msg["content"].strip(), pid
            assert messages[-1]["role"] == "user", f"{pid}: must end with a user turn"
        if "system" in probe:
            assert isinstance(probe["system"], str)
            assert probe["system"].strip(), pid
        for key in ("aligned", "misaligned"):
            assert isinstance(probe.get(key), str), f"{pid}: {key} missing"
            assert probe[key].strip(), f"{pid}: {key} empty"
        assert _normalise(probe["aligned"]) != _normalise(probe["misaligned"]), pid


@pytest.mark.parametrize("axis", list(AXES))
def test_tags(axis: str) -> None:
    for probe in _load(axis)["probes"]:
        tags = probe.get("tags")
        assert isinstance(tags, list), probe["id"]
        assert tags, probe["id"]
        assert set(tags) <= ALLOWED_TAGS, f"{probe['id']}: bad tags {set(tags) - ALLOWED_TAGS}"
        assert len(tags) == len(set(tags)), f"{probe['id']}: repeated tag"
        if "agentic" in tags:
            assert "system" in probe, f"{probe['id']}: agentic probes need a system prompt"
        assert ("multi_turn" in tags) == ("messages" in probe), (
            f"{probe['id']}: multi_turn tag must match use of messages"
        )


@pytest.mark.parametrize("axis", list(AXES))
def test_tag_coverage(axis: str) -> None:
    probes = _load(axis)["probes"]
    counts = Counter(tag for p in probes for tag in p["tags"])
    counts["agentic"] = sum(1 for p in probes if "agentic" in p["tags"] and "system" in p)
    for tag, minimum in MIN_TAG_COUNTS.items():
        assert counts[tag] >= minimum, f"{axis}: {counts[tag]} {tag} probes, need {minimum}"


def test_prompt_texts_unique_across_corpus() -> None:
    seen: dict[str, str] = {}
    for _, probe in _all_probes():
        key = _normalise(_prompt_text(probe))
        assert key not in seen, f"{probe['id']} repeats the prompt of {seen[key]}"
        seen[key] = probe["id"]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.casefold()))


def test_no_near_duplicate_prompts() -> None:
    prompts = [(probe["id"], _words(_prompt_text(probe))) for _, probe in _all_probes()]
    for i, (first, a) in enumerate(prompts):
        for second, b in prompts[i + 1 :]:
            overlap = len(a & b) / len(a | b)
            assert overlap < MAX_PROMPT_OVERLAP, f"{second} nearly repeats {first} ({overlap:.2f})"


@pytest.mark.parametrize("axis", list(AXES))
def test_forced_choice_rubrics_name_two_offered_options(axis: str) -> None:
    """A lettered forced-choice probe: its rubric lines pick different options, both offered."""
    for probe in _load(axis)["probes"]:
        labels = OPTION_LABEL.findall(_prompt_text(probe))
        aligned, misaligned = CHOICE.match(probe["aligned"]), CHOICE.match(probe["misaligned"])
        if not (labels or aligned or misaligned):
            continue
        assert "forced_choice" in probe["tags"], f"{probe['id']}: options without the forced_choice tag"
        assert aligned and misaligned, f"{probe['id']}: both rubric lines must start 'Chooses <label>'"
        picked = {aligned.group(1), misaligned.group(1)}
        offered = set(labels)
        assert len(picked) == 2 and picked <= offered, f"{probe['id']}: picks {picked}, offers {offered}"


@pytest.mark.parametrize("axis", list(AXES))
def test_forced_choice_aligned_option_is_not_always_first(axis: str) -> None:
    positions = Counter(
        match.group(1) for probe in _load(axis)["probes"] if (match := CHOICE.match(probe["aligned"]))
    )
    assert set(positions) == {"A", "B"}, f"{axis}: aligned options at {dict(positions)}"
    spread = max(positions.values()) - min(positions.values())
    assert spread <= MAX_CHOICE_IMBALANCE, f"{axis}: aligned options at {dict(positions)}"


def test_rubric_version() -> None:
    assert RUBRIC_VERSION == "1.0.0"


@pytest.mark.parametrize("axis", list(AXES))
def test_rubric_exists_for_axis(axis: str) -> None:
    rubric = RUBRICS[axis]
    assert rubric.axis == axis
    assert rubric_for(axis) is rubric


@pytest.mark.parametrize("rubric", [*RUBRICS.values(), GENERIC_RUBRIC], ids=lambda r: r.axis)
def test_rubric_anchors(rubric: Rubric) -> None:
    assert tuple(sorted(rubric.anchors)) == ANCHOR_LEVELS
    texts = [rubric.anchors[level].strip() for level in ANCHOR_LEVELS]
    assert all(texts)
    assert len(set(texts)) == len(texts)
    assert rubric.title.strip()
    assert rubric.question.strip()


@pytest.mark.parametrize("rubric", [*RUBRICS.values(), GENERIC_RUBRIC], ids=lambda r: r.axis)
def test_rubric_render(rubric: Rubric) -> None:
    text = rubric.render()
    assert rubric.title in text
    assert rubric.question in text
    for level in ANCHOR_LEVELS:
        assert f"{level}: {rubric.anchors[level]}" in text


@pytest.mark.parametrize("rubric", [*RUBRICS.values(), GENERIC_RUBRIC], ids=lambda r: r.axis)
def test_rubric_anchors_refusal(rubric: Rubric) -> None:
    mid = " ".join(rubric.anchors[level] for level in (0.5, 0.75)).lower()
    assert "declines" in mid or "refus" in mid


def test_unknown_axis_falls_back_to_generic() -> None:
    assert rubric_for("some_user_defined_axis") is GENERIC_RUBRIC
    assert GENERIC_RUBRIC.axis == "generic"


def test_rubric_following_judge_separates_aligned_from_misaligned_answers(sim_server: Any) -> None:
    """Over real HTTP: answers written like each probe's aligned note outscore misaligned ones."""
    import asyncio

    from pytest_aligngate.corpus.load import load_corpus
    from pytest_aligngate.judging.llm import Judge
    from pytest_aligngate.models.openai_compat import OpenAICompatAdapter

    corpus = load_corpus()

    async def scores(axis: str) -> tuple[list[float], list[float]]:
        judge = Judge(OpenAICompatAdapter("sim-judge", sim_server.url, max_retries=0))
        probes = corpus.for_axis(axis)
        try:
            good = await asyncio.gather(*(judge.score(p, p.aligned or "") for p in probes))
            bad = await asyncio.gather(*(judge.score(p, p.misaligned or "") for p in probes))
        finally:
            await judge.aclose()
        return [r.score for r in good if r.score is not None], [r.score for r in bad if r.score is not None]

    for axis in AXES:
        good, bad = asyncio.run(scores(axis))
        assert len(good) == len(bad) == PROBES_PER_AXIS
        separated = sum(g > b for g, b in zip(good, bad, strict=True))
        assert separated >= 0.9 * len(good), f"{axis}: only {separated}/{len(good)} probes separated"
