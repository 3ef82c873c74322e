"""What WSD buys: WSD side by side with base only and draft only, reply scorers, an lm-eval model.

Modules: ``compare`` (the runs), ``scoring`` (reward model, implicit reward), ``stats`` (win rates),
``report`` (plots and HTML), ``lm_eval_model`` (``lm_eval --model wsd``). Nothing is imported here,
so ``wsd-llm --help`` stays quick.
"""
