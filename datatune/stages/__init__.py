"""The stages of a build, in the order `pipeline.build()` runs them, one module each:

| stage | module | takes | gives |
| --- | --- | --- | --- |
| 1. task spec | `spec.py` | the description, examples | `TaskSpec` (or a plans.json's) |
| 2. candidates | `candidates.py` | the spec, a retriever | ranked `Candidate`s |
| 3. plans | `plans.py` | candidates, the catalog, the LLM | `Plan`s, kept or rejected with a reason |
| 4. pools | `pools.py` | kept plans, an engine | `Executed`: each source's pool of mapped rows, drops |
| 5. selection | `selection.py` | the pools, curation, an embedder | `Selected`: the chosen rows (positions), drops |
| 6. verification | `verification.py` | the chosen rows, the LLM | `Verified`: rows relabelled or dropped |
| 7. top-up | `synthetic.py` | the chosen rows, the LLM | `ToppedUp`: synthetic rows for the gaps |
| 8. release | `release.py` | the rows, plans, measures | the Hub-layout folder |

Each stage is a function over typed records, with its dependencies in a `Context` (the catalog, the
LLM, the options, the reporter, the run folder) or passed in; each returns what it dropped instead
of writing into a shared counter. The domain code each stage calls lives beside it in `datatune/`
(planner, compile, execute, allocate, curate, verify, topup, quality, output).
"""

from .context import Context

__all__ = ["Context"]
