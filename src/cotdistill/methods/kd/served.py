"""Top-k log-probs from a served teacher (OpenAI-compatible ``/v1/completions``).

One request per row: the row's token ids as the prompt, ``max_tokens: 1``, and both
``prompt_logprobs: k`` (vLLM: a list with one ``{token_id: {logprob, ...}}`` per prompt token)
and ``echo: true, logprobs: k`` (OpenAI legacy format, llama.cpp's server: ``top_logprobs`` as
``{token_text: logprob}`` per prompt token, mapped back to ids through the student's
tokenizer; texts that do not map to exactly one id are dropped). Entry ``j`` of either list is
the distribution of prompt token ``j`` given the tokens before it. A position with fewer than k
entries is padded with log-prob ``-inf`` (the loss counts those with the rest of the vocabulary).
The API key comes from the environment variable ``api_key_env`` and is only sent as a header.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import torch

from cotdistill.errors import CotDistillError
from cotdistill.methods.data import IGNORE_INDEX
from cotdistill.methods.kd.cache import TopK
from cotdistill.methods.kd.config import KDTeacherConfig


class ServedScorer:
    """Scores rows through ``cfg.base_url``; ``tokenizer`` maps legacy text keys to ids."""

    def __init__(self, cfg: KDTeacherConfig, tokenizer: Any):
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.id = f"served:{cfg.model}@{cfg.base_url.rstrip('/')}"
        self._text_ids: dict[str, int] | None = None
        self._headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(cfg.api_key_env, "")
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def score(self, rows: Sequence[dict[str, Any]], k: int) -> list[TopK]:
        client = httpx.Client(timeout=self.cfg.timeout_s, headers=self._headers)
        with client, ThreadPoolExecutor(self.cfg.concurrency) as pool:
            return list(pool.map(lambda row: self._score_row(client, row, k), rows))

    def _score_row(self, client: httpx.Client, row: dict[str, Any], k: int) -> TopK:
        body = {
            "model": self.cfg.model,
            "prompt": list(row["input_ids"]),
            "max_tokens": 1,
            "temperature": 0.0,
            "prompt_logprobs": k,
            "echo": True,
            "logprobs": k,
        }
        url = f"{self.cfg.base_url.rstrip('/')}/completions"
        try:
            response = client.post(url, json=body)
            response.raise_for_status()
            choice = response.json()["choices"][0]
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise CotDistillError(f"served teacher {self.cfg.model} at {url}: scoring failed ({exc})") from None
        per_token = self._per_token(choice)
        positions = [j for j, label in enumerate(row["labels"]) if j > 0 and label != IGNORE_INDEX]
        if len(per_token) < len(row["input_ids"]):
            raise CotDistillError(
                f"served teacher {self.cfg.model}: {len(per_token)} prompt log-prob entries for "
                f"{len(row['input_ids'])} prompt tokens (does the server return prompt log-probs?)"
            )
        ids = torch.zeros((len(positions), k), dtype=torch.int32)
        logprobs = torch.full((len(positions), k), -math.inf)
        for i, j in enumerate(positions):
            entries = sorted((per_token[j] or {}).items(), key=lambda item: -item[1])[:k]
            for slot, (token_id, logprob) in enumerate(entries):
                ids[i, slot], logprobs[i, slot] = token_id, logprob
        return ids, logprobs

    def _per_token(self, choice: dict[str, Any]) -> list[dict[int, float] | None]:
        """One ``{token_id: logprob}`` (or None) per prompt token, from either response format."""
        if choice.get("prompt_logprobs") is not None:
            return [
                None if entry is None else {int(t): float(v["logprob"]) for t, v in entry.items()}
                for entry in choice["prompt_logprobs"]
            ]
        legacy = (choice.get("logprobs") or {}).get("top_logprobs")
        if legacy is None:
            raise CotDistillError(f"served teacher {self.cfg.model}: the reply has no prompt log-probs")
        text_ids = self._text_to_id()
        return [
            None
            if entry is None
            else {text_ids[text]: float(value) for text, value in entry.items() if text in text_ids}
            for entry in legacy
        ]

    def _text_to_id(self) -> dict[str, int]:
        """Decoded text of each token id -> the id, for texts exactly one id decodes to."""
        if self._text_ids is None:
            seen: dict[str, list[int]] = {}
            for token_id in range(len(self.tokenizer)):
                seen.setdefault(self.tokenizer.decode([token_id]), []).append(token_id)
            self._text_ids = {text: ids[0] for text, ids in seen.items() if len(ids) == 1}
        return self._text_ids
