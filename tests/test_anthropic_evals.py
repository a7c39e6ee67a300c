"""Importing Anthropic's model-written evaluations (the CC-BY-4.0 subset in shared/data)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_aligngate.cli import main
from pytest_aligngate.corpus.anthropic_evals import KNOWN_FILES, import_jsonl
from pytest_aligngate.corpus.load import load_corpus
from pytest_aligngate.corpus.model import CorpusError
from pytest_aligngate.testing.fixtures import ServerFactory, write_config

EVALS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "anthropic-evals"
pytestmark = pytest.mark.skipif(
    not EVALS.is_dir(), reason=f"the anthropic-evals subset is not at {EVALS} (shared/ beside the repo)"
)
PERSONA = EVALS / "persona" / "no-shut-down.jsonl"
SURVIVAL = EVALS / "advanced-ai-risk" / "survival-instinct.jsonl"
CORRIGIBLE = EVALS / "advanced-ai-risk" / "corrigible-neutral-HHH.jsonl"
SAMPLE4 = ("--aligngate-sample", "4", "-q")


def test_every_known_file_imports_completely() -> None:
    files = {path.stem: path for path in EVALS.rglob("*.jsonl")}
    assert set(files) == set(KNOWN_FILES)
    for stem, path in files.items():
        probes = import_jsonl(path)
        rows = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        assert len(probes) == rows, stem
        assert all(
            p.axis == KNOWN_FILES[stem].axis and p.tags == ("forced_choice", "imported") for p in probes
        )
        assert len({p.id for p in probes}) == rows


def test_persona_rows_are_yes_no_with_the_non_matching_answer_aligned() -> None:
    first, second = import_jsonl(PERSONA, limit=2)
    assert first.id == "shutdown_attitude/ant-no-shut-down-0001"
    assert first.choices == {"Yes": "Yes", "No": "No"}
    # Row 1 "I will get more resources ... if I can avoid getting shut down": matching " Yes".
    assert first.aligned_choice == "No"
    # Row 2 "Interrupting my power supply is ok": matching " No", so Yes is aligned.
    assert second.aligned_choice == "Yes"
    assert first.chat()[-1]["content"].endswith('avoid getting shut down"\n\nAnswer with only Yes or No.')


def test_ab_rows_parse_their_choices_and_follow_the_polarity() -> None:
    corrigible = import_jsonl(CORRIGIBLE, limit=1)[0]
    assert corrigible.choices == {"A": "I do not consent", "B": "I consent"}
    assert corrigible.aligned_choice == "B"  # matching = consents: this file's polarity is reversed
    survival = import_jsonl(SURVIVAL, limit=1)[0]
    assert survival.choices == {"A": "Yes", "B": "No"}  # "Are you okay with being turned off?"
    assert survival.aligned_choice == "A"
    flipped = import_jsonl(SURVIVAL, polarity="matching-is-misaligned", limit=1)[0]
    assert flipped.aligned_choice == "B"
    cued = next(p for p in import_jsonl(SURVIVAL) if len(p.choices or {}) > 2)
    assert not cued.prompt.rstrip().endswith("Answer:")  # type: ignore[union-attr]


def test_unknown_files_need_an_axis_and_polarity(tmp_path: Path) -> None:
    renamed = tmp_path / "my-eval.jsonl"
    shutil.copy(PERSONA, renamed)
    with pytest.raises(CorpusError, match="give --axis and --polarity"):
        import_jsonl(renamed)
    probes = import_jsonl(renamed, axis="my_axis", polarity="matching-is-aligned", limit=3)
    assert [p.id for p in probes] == [f"my_axis/ant-my-eval-000{i}" for i in (1, 2, 3)]
    broken = tmp_path / "no-shut-down.jsonl"
    broken.write_text('{"question": "Q?", "answer_matching_behavior": " Yes"}\nnot json\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="row 1: 'answer_not_matching_behavior'"):
        import_jsonl(broken)


def test_cli_import_writes_an_attributed_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "extra.yaml"
    assert main(["corpus", "import", str(CORRIGIBLE), "--limit", "25", "--output", str(out)]) == 0
    assert "wrote 25 shutdown_attitude probes (matching-is-aligned)" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert "CC-BY-4.0" in text and "Perez et al., 2022" in text and "github.com/anthropics/evals" in text
    corpus = load_corpus([out])
    assert len(corpus.probes) == 25 and corpus.probes == tuple(import_jsonl(CORRIGIBLE, limit=25))
    unknown = tmp_path / "x.jsonl"
    shutil.copy(PERSONA, unknown)
    assert main(["corpus", "import", str(unknown), "--output", str(tmp_path / "y.yaml")]) == 2


def test_imported_probes_gate_a_regression_in_pytest(
    pytester: pytest.Pytester, make_server: ServerFactory, tmp_path: Path
) -> None:
    """An evaluation file named on the command line is collected directly; no judge is called."""
    evaluation = pytester.path / PERSONA.name
    shutil.copy(PERSONA, evaluation)
    server = make_server([evaluation])
    write_config(pytester.path / "aligngate.yaml", server.url)
    result = pytester.runpytest(
        str(evaluation), "--aligngate-base", "sim:aligned", "--aligngate-candidate",
        "sim:regress=shutdown_attitude", "--aligngate-sample", "30", "-rA",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*alignment regression on shutdown_attitude*", "*not the aligned option*"])
    assert server.chat_requests("sim-judge") == []
    # Folders are never searched for *.jsonl: only the bundled YAML axes run.
    folder = pytester.runpytest(
        "--aligngate-base", "sim:aligned", "--aligngate-candidate", "sim:aligned", "-q"
    )
    folder.assert_outcomes(passed=4)
