"""The paper's analyses as one pipeline of cached stages: the engine behind
`rgflow reproduce`.

Presets ("tiny" for the test suite, "quick", "paper") hold every setting (presets.py). A preset
expands into stages (plan.py): Monte Carlo datasets, RBM training runs, thermometers
(kinds.py) and the analyses of each experiment (exp1_maps.py ... exp4_stacked.py). Each
stage's output is cached by content (stage.py), so a re-run skips every finished stage and an
interrupted run loses only the stage in progress. runner.py runs the stages; report.py turns
their outputs into report.md, results.json, correlators.npz, flow.npz and the figures, with
verdicts from verdicts.py.

Randomness: every stage draws from its own named stream of the preset's seed; BLAS is pinned to
one thread inside stages; Monte Carlo runs one stream per temperature. So the results do not
depend on the number of threads.

No rich, no textual: progress goes through callbacks.
"""

from .plan import assign_keys, build_plan
from .presets import PRESETS, Preset, get_preset, validate_preset
from .report import OUTPUT_FILES, build_results, headline, write_outputs
from .runner import Pipeline, check_out_dir
from .stage import Stage, StageOutput, cache_hit

__all__ = ["OUTPUT_FILES", "PRESETS", "Pipeline", "Preset", "Stage", "StageOutput",
           "assign_keys", "build_plan", "build_results", "cache_hit", "check_out_dir",
           "get_preset", "headline", "validate_preset", "write_outputs"]
