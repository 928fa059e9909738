"""Rationale distillation data: prompts, filtering, the resumable store and ``generate_rationales``."""
