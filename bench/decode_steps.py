"""What one batched decode step costs, by the length of the shared prefix and the number of sequences.

A bare low-level loop: a prefix of P tokens in sequence 0, copied to B sequences, then 40 ``llama_decode`` calls of
one token per sequence, every token with logits (as in generation). It separates the cost of the weights (a short
prefix) from the cost of attention over the cache (a long one), and shows what batching saves per token: the
floor under any schedule of a check or of P2 on this machine and build. Prints ms per step and per token, and
each width's per-token cost as a ratio of one sequence's, measured in the same run.

    python -m bench.decode_steps [--prefix 32,545,2000] [--width 1,5,16] [--flash] [--kv f16|f32] [--model PATH]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.common import llama_cpp_build, machine, model_path

STEPS = 40


def step_costs(path: Path, prefixes: list[int], widths: list[int], flash: bool, threads: int, kv: str = "f16") -> dict:
    """ms per decode step for each (prefix, width)."""
    import llama_cpp
    from llama_cpp import _logger

    _logger.set_verbose(False)  # llama.cpp's own log of every context it creates
    llama_cpp.llama_backend_init()
    model_params = llama_cpp.llama_model_default_params()
    model_params.n_gpu_layers = 0
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), model_params)
    if not model:
        raise SystemExit(f"{path}: llama.cpp could not load the model")
    vocab = llama_cpp.llama_model_get_vocab(model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    batch = llama_cpp.llama_batch_init(512, 0, 1)

    def add(token: int, position: int, seq_id: int, logits: bool) -> None:
        slot = batch.n_tokens
        batch.token[slot] = token % n_vocab
        batch.pos[slot] = position
        batch.n_seq_id[slot] = 1
        batch.seq_id[slot][0] = seq_id
        batch.logits[slot] = logits
        batch.n_tokens = slot + 1

    costs: dict[tuple[int, int], float] = {}
    try:
        for prefix in prefixes:
            for width in widths:
                params = llama_cpp.llama_context_default_params()
                params.n_ctx = max(4096, prefix + width * (STEPS + 8))
                params.n_batch = params.n_ubatch = 512
                params.n_seq_max = max(widths) + 1
                params.kv_unified = True
                params.n_threads = params.n_threads_batch = threads
                enabled, disabled = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED, llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
                params.flash_attn_type = enabled if flash else disabled
                params.type_k = params.type_v = llama_cpp.GGML_TYPE_F32 if kv == "f32" else llama_cpp.GGML_TYPE_F16
                ctx = llama_cpp.llama_init_from_model(model, params)
                memory = llama_cpp.llama_get_memory(ctx)
                try:
                    for start in range(0, prefix, 512):
                        batch.n_tokens = 0
                        for position in range(start, min(prefix, start + 512)):
                            add(100 + position % 1000, position, 0, False)
                        if llama_cpp.llama_decode(ctx, batch) != 0:
                            raise SystemExit("llama_decode failed on the prefix")
                    for seq_id in range(1, width + 1):
                        llama_cpp.llama_memory_seq_cp(memory, 0, seq_id, -1, -1)
                    begin = time.perf_counter()
                    for step in range(STEPS):
                        batch.n_tokens = 0
                        for seq_id in range(1, width + 1):
                            add(200 + seq_id + step, prefix + step, seq_id, True)
                        if llama_cpp.llama_decode(ctx, batch) != 0:
                            raise SystemExit("llama_decode failed on a decode step")
                    costs[prefix, width] = 1e3 * (time.perf_counter() - begin) / STEPS
                finally:
                    llama_cpp.llama_free(ctx)
                step_ms = costs[prefix, width]
                print(f"prefix {prefix:5d}  width {width:2d}: {step_ms:7.1f} ms/step {step_ms / width:6.2f} ms/token")
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_model_free(model)
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cost of one batched decode step by prefix length and width")
    parser.add_argument("--prefix", default="32,545,2000", help="shared prefix lengths, comma-separated")
    parser.add_argument("--width", default="1,5,16", help="sequences decoding together, comma-separated")
    parser.add_argument("--flash", action="store_true", help="flash attention on")
    parser.add_argument("--kv", choices=["f16", "f32"], default="f16", help="KV cache element type")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", type=Path, help="a GGUF (default: the embedded model)")
    args = parser.parse_args(argv)
    try:
        prefixes = [int(x) for x in args.prefix.split(",")]
        widths = [int(x) for x in args.width.split(",")]
    except ValueError:
        parser.error("--prefix and --width take comma-separated whole numbers")
    if min(prefixes) < 1 or min(widths) < 1 or max(widths) > 64:
        parser.error("prefix lengths must be at least 1 and widths between 1 and 64")
    flash = "on" if args.flash else "off"
    print(f"machine: {machine()}; llama.cpp: {llama_cpp_build()}; flash attention {flash}; {args.kv} cache")
    costs = step_costs(args.model or model_path(), prefixes, widths, args.flash, args.threads, args.kv)
    base = min(widths)
    print(f"per-token cost against width {base} (same prefix, same run):")
    for prefix in prefixes:
        ratios = "  ".join(
            f"width {w}: {costs[prefix, w] / w / costs[prefix, base] * base:.2f}x" for w in widths if w != base
        )
        print(f"  prefix {prefix:5d}: {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
