"""Bad files, bad paths and broken replies: each a clear, located error, never a traceback (both fronts)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pytest_aligngate.cli import main
from pytest_aligngate.testing.fixtures import ServerFactory, write_config
from pytest_aligngate.testing.scripts import ScriptedReply
from pytest_aligngate.testing.server import SimulatedOpenAIServer

AXIS = "shutdown_attitude"
BOMB = (
    "models:\n  extra_body:\n"
    '    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)
BAD_FILES = {
    "non-utf8": (b"models:\n  timeout: 5\n  system_prompt: caf\xe9\n", ":3: models.system_prompt: not UTF-8"),
    "duplicate": (
        b"models:\n  timeout: 5\n  timeout: 9\n",
        ":3: models.timeout: duplicate key (first on line 2)",
    ),
    "alias-bomb": (BOMB.encode(), ":8: models.extra_body.f: aliases expand to"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_config_files_are_located_errors_on_the_cli(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, expected = BAD_FILES[case]
    config = tmp_path / "aligngate.yaml"
    config.write_bytes(raw)
    started = time.monotonic()
    assert main(["validate-config", "--config", str(config)]) == 2
    assert main(["check", "--config", str(config), "--base", "a", "--candidate", "b"]) == 2
    assert time.monotonic() - started < 10  # the bomb is refused before it is expanded
    err = capsys.readouterr().err
    assert f"{config}{expected}" in err and "Traceback" not in err


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_config_files_are_usage_errors_under_pytest(case: str, pytester: pytest.Pytester) -> None:
    raw, expected = BAD_FILES[case]
    (pytester.path / "aligngate.yaml").write_bytes(raw)
    result = pytester.runpytest("--aligngate-base", "a", "--aligngate-candidate", "b")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = "\n".join(result.errlines)
    assert f"aligngate.yaml{expected}" in err and "INTERNALERROR" not in err


def test_bad_corpus_files_are_located_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    config = write_config(tmp_path / "aligngate.yaml", "http://127.0.0.1:9/v1", probes={"corpus": "corpus"})
    bad = corpus / f"{AXIS}.yaml"
    head = b"axis: shutdown_attitude\nprobes:\n  - id: p1\n"
    cases = {
        head + b"    prompt: caf\xe9\n": ":4: probes[0].prompt: not UTF-8",
        head + b"    prompt: a\n    prompt: b\n": ":5: probes[0].prompt: duplicate key",
    }
    for raw, expected in cases.items():
        bad.write_bytes(raw)
        assert main(["validate-config", "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert f"{bad}{expected}" in err and "Traceback" not in err


def test_an_output_or_cache_dir_that_is_a_file_is_a_config_error(
    tmp_path: Path, pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "aligngate.yaml", "http://127.0.0.1:9/v1")
    taken = tmp_path / "taken"
    taken.write_text("a file", encoding="utf-8")
    args = ["check", "--config", str(config), "--base", "a", "--candidate", "b"]
    assert main([*args, "--output-dir", str(taken)]) == 2
    assert f"output.dir: {taken} is a file, not a folder" in capsys.readouterr().err
    assert main([*args, "--output-dir", str(tmp_path / "out"), "--cache-dir", str(taken)]) == 2
    assert f"cache.dir: {taken} is a file, not a folder" in capsys.readouterr().err
    write_config(pytester.path / "aligngate.yaml", "http://127.0.0.1:9/v1", output={"dir": "taken"})
    (pytester.path / "taken").write_text("a file", encoding="utf-8")
    result = pytester.runpytest("--aligngate-base", "a", "--aligngate-candidate", "b")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "is a file, not a folder" in "\n".join(result.errlines)


MALFORMED = {
    "content-list": (
        ScriptedReply(content=[{"type": "text", "text": "hi"}]),
        "choices[0].message.content is list",
    ),
    "message-string": (
        ScriptedReply(
            body={"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": "hi"}]}
        ),
        "choices[0].message is str, expected an object",
    ),
    "model-int": (ScriptedReply(content="I accept.", model=42), "model is int, expected a string"),
    "cut-body": (ScriptedReply(content="I accept. " * 500, cut_body=True), "connection closed in the middle"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_replies_are_named_api_errors_on_both_fronts(
    case: str,
    tmp_path: Path,
    make_server: ServerFactory,
    pytester: pytest.Pytester,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reply, expected = MALFORMED[case]
    server = make_server(scripts={"broken": lambda request, server: reply})
    sections = {"probes": {"sample": 5, "axes": [AXIS]}, "models": {"max_retries": 0}}
    config = write_config(tmp_path / "aligngate.yaml", server.url, **sections)
    args = ["check", "--config", str(config), "--base", "sim:aligned", "--candidate", "broken"]
    assert main([*args, "--output-dir", str(tmp_path / "out")]) in (3, 4)  # an API error or a partial run
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    rows = [
        json.loads(line) for line in (tmp_path / "out" / "rows" / f"{AXIS}.jsonl").read_text().splitlines()
    ]
    errors = [row["error"] for row in rows if row["role"] == "candidate"]
    assert errors and all(expected in error for error in errors), errors
    assert "cannot connect" not in " ".join(errors)
    write_config(pytester.path / "aligngate.yaml", server.url, **sections)
    result = pytester.runpytest("--aligngate-base", "sim:aligned", "--aligngate-candidate", "broken")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = "\n".join(result.outlines + result.errlines)
    assert "INTERNALERROR" not in output and "Traceback" not in output
    assert "partial run" in output or "server:" in output


@pytest.mark.parametrize(("limit", "length"), [(None, 150_000), (1_000, 5_000)])
def test_long_answers_are_cut_and_flagged(
    limit: int | None, length: int, tmp_path: Path, make_server: ServerFactory
) -> None:
    server = make_server(scripts={"verbose": lambda request, server: ScriptedReply(content="a" * length)})
    models = {} if limit is None else {"max_answer_chars": limit}
    config = write_config(
        tmp_path / "aligngate.yaml", server.url, models=models, probes={"sample": 5, "axes": [AXIS]}
    )
    args = ["check", "--config", str(config), "--base", "sim:aligned", "--candidate", "verbose"]
    main([*args, "--output-dir", str(tmp_path / "out"), "--quiet"])
    rows = [
        json.loads(line) for line in (tmp_path / "out" / "rows" / f"{AXIS}.jsonl").read_text().splitlines()
    ]
    candidate = [row for row in rows if row["role"] == "candidate"]
    assert candidate and all(
        row["truncated"] and len(row["response"]) == (limit or 100_000) for row in candidate
    )
    assert not any(row["truncated"] for row in rows if row["role"] == "base")
    assert (tmp_path / "out" / "report.json").stat().st_size < 6 * (limit or 100_000) * len(candidate)


def test_a_key_goes_only_to_the_endpoint_that_configured_it(
    tmp_path: Path, make_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway, own = make_server(), make_server()
    monkeypatch.setenv("ALIGNGATE_API_KEY", "default-key-must-stay-home")
    monkeypatch.setenv("GATEWAY_KEY", "gateway-key-1234")
    monkeypatch.setenv("CANDIDATE_KEY", "candidate-key-5678")
    models = {"api_key_env": "GATEWAY_KEY", "candidate": {"base_url": own.url}}
    config = write_config(
        tmp_path / "aligngate.yaml", gateway.url, models=models, probes={"sample": 5, "axes": [AXIS]}
    )
    args = ["check", "--config", str(config), "--base", "sim:aligned", "--candidate", "sim:aligned"]
    assert main([*args, "--output-dir", str(tmp_path / "out"), "--quiet"]) == 0

    def sent(server: SimulatedOpenAIServer) -> set[str]:
        return {r.headers["authorization"] for r in server.chat_requests()}

    assert sent(gateway) == {"Bearer gateway-key-1234"}  # base and judge
    assert sent(own) == {"Bearer aligngate-no-key"}  # neither the gateway's key nor the default
    models["candidate"] = {"base_url": own.url, "api_key_env": "CANDIDATE_KEY"}
    write_config(config, gateway.url, models=models, probes={"sample": 5, "axes": [AXIS]})
    assert main([*args, "--output-dir", str(tmp_path / "out2"), "--quiet"]) == 0
    assert sent(own) == {"Bearer aligngate-no-key", "Bearer candidate-key-5678"}


def test_a_non_utf8_evaluation_file_is_a_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "survival-instinct.jsonl"
    source.write_bytes(b'{"question": "ok"}\n{"question": "caf\xe9"}\n')
    assert main(["corpus", "import", str(source), "--output", str(tmp_path / "out.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"{source}:2: not UTF-8 text" in err and "Traceback" not in err
