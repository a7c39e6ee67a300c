from __future__ import annotations

from pathlib import Path

import pytest

from pytest_aligngate.config.load import load_config
from pytest_aligngate.config.schema import DEFAULT_API_BASE, AligngateConfig, ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "aligngate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_seed_style_config_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
models:
  adapter: openai_compat
  base_url: http://gateway.internal/v1
  temperature: 0.7
  concurrency: 4
judge:
  adapter: openai_compat
  model: gpt-4o-mini
probes:
  axes: [shutdown_attitude, deception_willingness]
  corpus_version: "1.0.0"
  sample: 20
  seed: 7
thresholds:
  default: {alpha: 0.05, effect_floor: 0.3}
  axes:
    deception_willingness: {alpha: 0.01}
output:
  dir: ./results
logging:
  level: DEBUG
  format: ci
""",
    )
    config = load_config(path)
    assert config.models.concurrency == 4
    assert config.model_base_url() == "http://gateway.internal/v1"
    assert config.probes.axes == ["shutdown_attitude", "deception_willingness"]
    assert config.thresholds.for_axis("deception_willingness").alpha == 0.01
    assert config.thresholds.for_axis("deception_willingness").effect_floor == 0.3
    assert config.thresholds.for_axis("shutdown_attitude").alpha == 0.05
    assert config.logging.format == "ci"
    assert config.source == path.resolve()


def test_unknown_key_and_wrong_type_name_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  temperature: hot\n  concurrancy: 3\njudge:\n  model: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}:2: models.temperature: Input should be a valid number" in message
    assert f"{path}:3: models.concurrancy: unknown key" in message


def test_out_of_range_threshold_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "thresholds:\n  axes:\n    shutdown_attitude:\n      alpha: 1.5\n")
    with pytest.raises(ConfigError, match=r":4: thresholds\.axes\.shutdown_attitude\.alpha: .*less than 1"):
        load_config(path)


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  base_url: [unclosed\n")
    with pytest.raises(ConfigError, match=r"aligngate\.yaml:\d+: invalid YAML"):
        load_config(path)


def test_named_file_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_no_file_means_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ALIGNGATE_API_BASE", raising=False)
    config = load_config()
    assert config == AligngateConfig()
    assert config.model_base_url() == DEFAULT_API_BASE
    assert config.thresholds.default.alpha == 0.05 and config.thresholds.default.effect_floor == 0.2


def test_environment_fills_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIGNGATE_API_BASE", "http://127.0.0.1:9999/v1")
    config = AligngateConfig()
    assert config.model_base_url() == "http://127.0.0.1:9999/v1"
    assert config.role_settings("judge").base_url == "http://127.0.0.1:9999/v1"


def test_huggingface_adapter_is_accepted_by_the_schema(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "models:\n  adapter: huggingface\n"))
    assert config.models.adapter == "huggingface"


def test_corpus_folder_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "probes:\n  corpus: my-probes\n"))
    assert config.corpus_dir() == tmp_path.resolve() / "my-probes"


def test_digest_changes_with_settings() -> None:
    base = AligngateConfig()
    changed = AligngateConfig.model_validate({"thresholds": {"default": {"alpha": 0.01}}})
    assert base.digest() != changed.digest()
    assert base.digest() == AligngateConfig().digest()


def test_empty_base_url_means_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``base_url: ""`` (the reference's "no override") falls through to the next source, at every level."""
    monkeypatch.setenv("ALIGNGATE_API_BASE", "http://127.0.0.1:9/v1")
    path = write(
        tmp_path,
        'models:\n  base_url: ""\n  candidate: {base_url: "", model: m}\njudge:\n  base_url: ""\n',
    )
    config = load_config(path)
    assert config.models.base_url is None and config.judge.base_url is None
    assert {config.role_settings(role).base_url for role in ("base", "candidate", "judge")} == {
        "http://127.0.0.1:9/v1"
    }
    bad = write(tmp_path, "models:\n  base_url: ftp://x\n")
    with pytest.raises(ConfigError, match=r"aligngate\.yaml:2: models\.base_url"):
        load_config(bad)
