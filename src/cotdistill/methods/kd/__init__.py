"""Logit-level and on-policy distillation (``method: kd``, ``method: kd_prada``).

``losses``: forward KL, reverse KL, generalized JSD (fp32, chunked, top-k with a tail bucket);
``teacher``/``scoring``/``served``/``cache``/``sources``: where the teacher's distribution
comes from (a local model online, an offline top-k cache filled by a local or served teacher);
``onpolicy``: student-sampled completions; ``trainer``: the ``StudentTrainer`` hook; ``method``:
registration. See docs/kd.md.
"""
