"""``aligngate doctor`` over real HTTP: one ping per role, latency and model, exit codes 0/2/3."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_aligngate.cli import main
from pytest_aligngate.testing.fixtures import ServerFactory
from pytest_aligngate.testing.scripts import ServerQuirks

SECRET = "sk-doctor-secret-value"


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "aligngate.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def doctor(config: Path, *args: str) -> int:
    return main(["doctor", "--config", str(config), *args])


def test_every_role_answers(
    tmp_path: Path,
    make_server: ServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway, vllm = (
        make_server(quirks=ServerQuirks(require_api_key=SECRET)),
        make_server(quirks=ServerQuirks(omit_usage=True)),
    )
    monkeypatch.setenv("GATEWAY_KEY", SECRET)
    config = write(
        tmp_path,
        {
            "models": {
                "base_url": gateway.url,
                "api_key_env": "GATEWAY_KEY",
                "candidate": {"base_url": vllm.url, "api_key_env": "", "model": "sim:thinker"},
            },
            "judge": {"model": "sim-judge"},
        },
    )
    assert doctor(config, "--base", "sim:aligned") == 0
    out = capsys.readouterr().out
    assert re.search(
        rf"base +ok +{re.escape(gateway.url)}  model 'sim:aligned'  \d+ ms  key: GATEWAY_KEY \(set\)", out
    )
    candidate = next(line for line in out.splitlines() if line.startswith("candidate"))
    assert vllm.url in candidate and "'sim:thinker'" in candidate and "key: none" in candidate
    assert "no token usage reported" in candidate and "reasoning in <think>" in candidate
    assert re.search(r"judge +ok .*model 'sim-judge'", out) and "OK: every role answered" in out
    assert SECRET not in out
    assert len(gateway.chat_requests()) == 2 and len(vllm.chat_requests()) == 1  # base + judge, candidate


def test_a_failing_role_exits_3_naming_it(
    tmp_path: Path,
    make_server: ServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = make_server(quirks=ServerQuirks(require_api_key="right"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    monkeypatch.setenv("GATEWAY_KEY", SECRET)
    config = write(
        tmp_path,
        {
            "models": {"base_url": server.url, "api_key_env": "GATEWAY_KEY", "candidate": {"base_url": dead}},
            "judge": {"model": "sim-judge"},
        },
    )
    assert doctor(config, "--base", "sim:aligned", "--candidate", "ckpt") == 3
    out = capsys.readouterr().out
    assert re.search(r"base +FAIL .*\n +auth: HTTP 401: .*GATEWAY_KEY holds a key this server rejects", out)
    assert re.search(r"candidate +FAIL .*\n +unreachable: cannot connect", out)
    assert "FAIL: base, candidate, judge did not answer" in out and SECRET not in out


def test_missing_model_or_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, {"models": {"base_url": "http://127.0.0.1:9/v1"}})
    assert doctor(config, "--base", "x") == 2
    assert (
        "candidate: no model id (give --candidate or set models.candidate.model)" in capsys.readouterr().err
    )
    bad = write(tmp_path, {"models": {"candidate": {"adapter": "azure"}}})
    assert doctor(bad, "--base", "x", "--candidate", "y") == 2
    assert "models.candidate.base_url: required for adapter 'azure'" in capsys.readouterr().err
