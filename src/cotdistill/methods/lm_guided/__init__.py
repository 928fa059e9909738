"""LM-Guided CoT (arXiv 2404.03414): a small rationale model guides a frozen reasoner.

Stage 1 (``kd``) fine-tunes the rationale model on teacher rationales; stage 2 (``rl``) trains
it with GRPO on rewards computed through the reasoner (``rewards``, ``rewarder``); ``inference``
answers with the reasoner from k rationales and a majority vote.
"""
