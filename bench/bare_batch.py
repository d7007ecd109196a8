"""The baseline of batched decoding: a bare shared-prefix loop on llama-cpp-python's low-level API.

No Python objects per token beyond what the loop needs: the prefix is decoded once in sequence 0, copied to one
sequence per prompt, every prompt is prefilled in one batch, then each ``llama_decode`` call carries one token per
live sequence and every live sequence samples with a native sampler chain (repeat penalty + greedy, the chain the
studio decoder builds for greedy settings). Text is not detokenized; only token counts come out.

The studio decoder (:mod:`studio.core.inference.batch`) is measured against this loop on the same token ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BareSettings:
    """Context settings of the bare loop; the studio backend is measured with the same ones."""

    n_ctx: int = 4096
    n_batch: int = 512
    n_ubatch: int = 512
    n_threads: int = 2
    flash_attn: bool = True
    n_seq_max: int = 17
    #: ggml type of the KV cache (llama_cpp.GGML_TYPE_*); None keeps llama.cpp's default (f16).
    kv_type: int | None = None


class BareBatchedDecoder:
    """A model and one context created with the low-level API, reused across runs."""

    def __init__(self, model_path: Path, settings: BareSettings) -> None:
        import llama_cpp

        llama_cpp.llama_backend_init()
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = 0
        self.model = llama_cpp.llama_model_load_from_file(str(model_path).encode("utf-8"), model_params)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = settings.n_ctx
        params.n_batch = settings.n_batch
        params.n_ubatch = settings.n_ubatch
        params.n_seq_max = settings.n_seq_max
        params.kv_unified = True
        params.n_threads = settings.n_threads
        params.n_threads_batch = settings.n_threads
        params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if settings.flash_attn else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        if settings.kv_type is not None:
            params.type_k = settings.kv_type
            params.type_v = settings.kv_type
        self.ctx = llama_cpp.llama_init_from_model(self.model, params)
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.settings = settings
        self.batch = llama_cpp.llama_batch_init(settings.n_batch, 0, 1)
        self.prefix: list[int] = []

    def close(self) -> None:
        import llama_cpp

        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)
        llama_cpp.llama_model_free(self.model)

    def _decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> None:
        import llama_cpp

        batch = self.batch
        for slot, (token, pos, seq, logits) in enumerate(entries):
            batch.token[slot] = token
            batch.pos[slot] = pos
            batch.n_seq_id[slot] = 1
            batch.seq_id[slot][0] = seq
            batch.logits[slot] = logits
        batch.n_tokens = len(entries)
        if llama_cpp.llama_decode(self.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")

    def load_prefix(self, prefix: list[int]) -> None:
        """Decode ``prefix`` into sequence 0 unless it is already there (warm)."""
        import llama_cpp

        for seq in range(1, self.settings.n_seq_max):
            llama_cpp.llama_memory_seq_rm(self.memory, seq, -1, -1)
        if prefix == self.prefix:
            return
        llama_cpp.llama_memory_clear(self.memory, True)
        step = self.settings.n_batch
        for start in range(0, len(prefix), step):
            chunk = prefix[start : start + step]
            self._decode([(t, start + i, 0, False) for i, t in enumerate(chunk)])
        self.prefix = list(prefix)

    def run(self, prefix: list[int], prompts: Sequence[list[int]], max_tokens: int, repeat_penalty: float) -> int:
        """Decode every prompt under ``prefix`` (all at once, greedy); return the number of generated tokens."""
        import llama_cpp

        if len(prompts) >= self.settings.n_seq_max:
            raise ValueError("more prompts than sequences")
        self.load_prefix(prefix)
        base = len(prefix)
        samplers = []
        for seq in range(1, len(prompts) + 1):
            llama_cpp.llama_memory_seq_cp(self.memory, 0, seq, -1, -1)
            chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
            llama_cpp.llama_sampler_chain_add(
                chain, llama_cpp.llama_sampler_init_penalties(self.n_vocab, 64, repeat_penalty, 0.0, 0.0)
            )
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
            samplers.append(chain)
        try:
            entries: list[tuple[int, int, int, bool]] = []
            live: list[tuple[int, int]] = []  # (sequence, index of its logits in the batch)
            for seq, prompt in enumerate(prompts, start=1):
                for i, token in enumerate(prompt):
                    entries.append((token, base + i, seq, i == len(prompt) - 1))
                live.append((seq, len(entries) - 1))
            positions = {seq: base + len(prompts[seq - 1]) for seq in range(1, len(prompts) + 1)}
            produced = {seq: 0 for seq in positions}
            generated = 0
            while live:
                self._decode(entries)
                entries = []
                next_live: list[tuple[int, int]] = []
                for seq, at in live:
                    token = llama_cpp.llama_sampler_sample(samplers[seq - 1], self.ctx, at)
                    if llama_cpp.llama_vocab_is_eog(self.vocab, token):
                        continue
                    generated += 1
                    produced[seq] += 1
                    if produced[seq] >= max_tokens:
                        continue
                    next_live.append((seq, len(entries)))
                    entries.append((token, positions[seq], seq, True))
                    positions[seq] += 1
                live = next_live
            return generated
        finally:
            for chain in samplers:
                llama_cpp.llama_sampler_free(chain)
            for seq in range(1, len(prompts) + 1):
                llama_cpp.llama_memory_seq_rm(self.memory, seq, -1, -1)
