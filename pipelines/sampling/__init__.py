"""The sampling engine synthesis and evaluation share: play k attempts of a teacher (or a policy) on every item of
a dataset split into a run dir, resumably.

One event loop drives `--concurrency` attempts; every finished attempt is appended to the run dir's log at once,
so a killed run resumes where it stopped, and the run dir is locked for one writer. The engine does not curate
or score: synthesis (`pipelines.synth_coldstart`) keeps the correct trajectories, evaluation (`pipelines.eval`)
scores every one. Modules: config (the run's options), engine (`sample`), attempt (one trajectory), rejudge (an
answer the judge did not decide, asked again), prompt (the
exemplars in context), ablation (what the policy is shown), seeding, outcome (how an invocation went),
usage (what the log paid), run_dir, items, progress.

This file imports nothing, so that reading `SynthConfig`'s defaults costs no engine import.
"""
