"""The `datatune` command. The only module that prints.

Errors a user can cause end with one line (what happened, what to do) and exit code 1; usage
errors exit 2; DATATUNE_DEBUG=1 shows the traceback. Data goes to stdout, progress to stderr.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click

from . import __version__
from .core.errors import DatatuneError
from .core.settings import Settings, debug_enabled, no_color


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True, color=False if no_color() else None)


def _reporter(quiet: bool, as_json: bool):
    from .progress import JsonReporter, Reporter, TqdmReporter

    if as_json:
        return JsonReporter()
    if quiet:
        return Reporter()
    return TqdmReporter(color=not no_color())


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except ImportError:
        pass


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "dataset"


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DatatuneError as e:
            if debug_enabled():
                raise
            _echo_err(f"Error: {e}")
            ctx.exit(1)
        except KeyboardInterrupt:
            if ctx.invoked_subcommand == "build":
                _echo_err("Interrupted. The run state is kept: re-run the same command (or add --resume) to continue.")
            else:
                _echo_err("Interrupted.")
            ctx.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="datatune")
def main() -> None:
    """Build fine-tuning datasets from existing public datasets."""


# -- shared options ---------------------------------------------------------------------------
def catalog_option(f):
    return click.option("--catalog", "catalog", metavar="PATH", help="Local catalog folder (like ../shared/hub). Default: $DATATUNE_CATALOG, else the Hugging Face Hub.")(f)


def llm_options(f):
    f = click.option("--model", help="Model name at the endpoint, or the embedded model (qwen2.5-coder-1.5b, qwen2.5-coder-0.5b). Env: DATATUNE_MODEL.")(f)
    f = click.option("--base-url", help="OpenAI-compatible endpoint. Env: OPENAI_BASE_URL. Default: the embedded model.")(f)
    f = click.option("--concurrency", type=click.IntRange(1, 256), help="LLM requests in flight (default: 2 embedded, 8 remote).")(f)
    f = click.option("--max-llm-calls", type=click.IntRange(0), help="Stop cleanly before making more LLM calls than this.")(f)
    f = click.option("--no-cache", is_flag=True, help="Bypass the LLM response cache.")(f)
    return timeout_option(f)


def _keep_timeout(ctx, param, value):
    if value is not None:
        ctx.meta["datatune.timeout"] = value
    return value


def timeout_option(f):
    """--timeout, read by make_settings through the click context (no parameter for each command)."""
    return click.option("--timeout", type=click.FloatRange(min=0, min_open=True), expose_value=False, callback=_keep_timeout, metavar="SECONDS",
                        help="Seconds one LLM request may wait for its answer; each is tried up to 3 times. "
                             "Env: DATATUNE_TIMEOUT. Default: 300 embedded, 120 remote.")(f)


def make_settings(catalog=None, model=None, base_url=None, concurrency=None, max_llm_calls=None, no_cache=False) -> Settings:
    ctx = click.get_current_context(silent=True)
    timeout = ctx.meta.get("datatune.timeout") if ctx is not None else None
    s = Settings.from_env().override(catalog=catalog, model=model, base_url=base_url, concurrency=concurrency, max_llm_calls=max_llm_calls,
                                     timeout=timeout)
    return s.override(use_cache=False) if no_cache else s


# -- build ------------------------------------------------------------------------------------
@main.command()
@click.argument("description", required=False, default="")
@catalog_option
@click.option("--size", type=int, default=1000, show_default=True, help="Rows in the built dataset.")
@click.option("--out", type=click.Path(path_type=Path), help="Output folder (Hub layout). Default: ./datatune-out/<task>.")
@click.option("--examples", type=click.Path(path_type=Path), help="Few-shot examples: JSONL with 'input' and 'output'.")
@click.option("--eval-file", type=click.Path(path_type=Path), help="JSONL of evaluation rows ('input'): rows overlapping them are dropped.")
@click.option("--validation-fraction", type=float, default=0.0, show_default=True, help="Share of rows in a validation split.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for sampling and the LLM: same plans + same seed = same output.")
@click.option("--per-source-cap", type=float, default=0.5, show_default=True, help="Largest share of --size one source dataset may fill.")
@click.option("--max-candidates", type=click.IntRange(1), default=8, show_default=True, help="Candidate datasets planned at most.")
@click.option("--splits", metavar="NAMES", help="Source splits rows may come from, comma-separated (e.g. 'train' when you will "
              "evaluate on the benchmarks' validation or test splits). Default: train first, others only to fill the set.")
@click.option("-k", "--top-k", type=click.IntRange(1), default=20, show_default=True, help="Candidates retrieved.")
@click.option("--exclude", multiple=True, metavar="NAME", help="Never use this dataset (repeatable).")
@click.option("--benchmark", metavar="NAME", help="The task comes from this benchmark: its copies are never sources.")
@click.option("--plans", "plans_file", type=click.Path(path_type=Path), help="Re-execute saved plans (plans.json): no planning calls.")
@click.option("--planner", type=click.Choice(["hybrid", "full"]), default="hybrid", show_default=True, envvar="DATATUNE_PLANNER",
              help="Who writes the plan: hybrid (the model picks columns, code derives and checks the rest; best for the "
                   "embedded model) or full (the model also writes label maps, extraction, templates; for strong remote models).")
@click.option("--rerank", is_flag=True, help="Rerank retrieved candidates by LLM self-consistency votes before planning.")
@click.option("--verify", type=click.Choice(["off", "flag", "relabel", "drop"]), default="off", show_default=True,
              help="Check labels: the LLM answers each row blind (numbers: writes a program, run isolated); "
                   "disagreements are flagged in the `check` column, relabelled, or dropped.")
@click.option("--verify-budget", type=click.IntRange(0), metavar="N", help="LLM calls --verify may spend (default: 2 per row).")
@click.option("--no-synthetic", is_flag=True, help="Never add synthetic rows.")
@click.option("--synthetic-fraction", type=float, default=0.5, show_default=True, help="Largest share of synthetic rows.")
@click.option("--synthetic-batch", type=click.IntRange(1, 20), default=5, show_default=True, metavar="N",
              help="Synthetic rows asked for per LLM call.")
@click.option("--no-curate", is_flag=True, help="Skip near-duplicate, language and contamination filters.")
@click.option("--no-embed", is_flag=True, help="Skip the MiniLM-based measures in the card (remote-clique, projection plot).")
@click.option("--dry-run", is_flag=True, help="Retrieve and plan, print the plans and estimates, write no rows.")
@click.option("--resume", is_flag=True, help="Continue the run in --out.")
@click.option("--overwrite", is_flag=True, help="Replace what is in --out.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True, envvar="DATATUNE_ENGINE",
              help="Where compiled plans run: this process, or Ray Data (a local Ray runtime, or $DATATUNE_RAY_ADDRESS's cluster). Same rows.")
@click.option("--push-to-hub", metavar="REPO", help="Upload the result to this Hub dataset repo.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("--json", "as_json", is_flag=True, help="Progress as JSON events on stdout.")
@llm_options
def build(description, catalog, size, out, examples, eval_file, validation_fraction, seed, per_source_cap, max_candidates, splits, top_k,
          exclude, benchmark, plans_file, planner, rerank, verify, verify_budget, no_synthetic, synthetic_fraction, synthetic_batch, no_curate, no_embed, dry_run, resume, overwrite, engine,
          push_to_hub, quiet, as_json, model, base_url, concurrency, max_llm_calls, no_cache):
    """Build a dataset for the task DESCRIPTION, e.g. "classify the sentiment of tweets"."""
    from .pipeline import BuildOptions
    from .task import check_description, load_examples

    if resume and out and not description:
        run = _read_run(out)
        description = run.get("description", "")
    description = check_description(description)
    options = BuildOptions(
        out=out or Path("datatune-out") / _slug(description), size=size, seed=seed, validation_fraction=validation_fraction,
        per_source_cap=per_source_cap, max_candidates=max_candidates, top_k=top_k,
        splits=[x.strip() for x in splits.split(",") if x.strip()] if splits else None,
        examples=load_examples(examples) if examples else [], eval_texts=_eval_texts(eval_file) if eval_file else [],
        exclude=list(exclude), benchmark=benchmark, plans_file=plans_file, dry_run=dry_run, resume=resume, overwrite=overwrite,
        synthetic=not no_synthetic, synthetic_fraction=synthetic_fraction, synthetic_batch=synthetic_batch, curate=not no_curate, planner=planner,
        rerank=rerank, verify=verify, verify_budget=verify_budget, engine=engine,
    )
    options.validate()
    settings = make_settings(catalog, model, base_url, concurrency, max_llm_calls, no_cache)
    _run_build(description, options, settings, _reporter(quiet, as_json), push_to_hub, quiet or as_json, embed=not no_embed)


def _read_run(out: Path) -> dict:
    p = Path(out) / ".datatune" / "run.json"
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _eval_texts(path: Path) -> list[str]:
    from .core.errors import ConfigError

    if not path.is_file():
        raise ConfigError(f"eval file not found: {path} (give a JSONL file with an 'input' field per line)")
    texts = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if line.strip():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}:{n}: not valid JSON ({e.msg})") from e
            value = obj.get("input") if isinstance(obj, dict) else obj
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{path}:{n}: no 'input' text (each line needs a non-empty string 'input' field)")
            texts.append(value)
    if not texts:
        raise ConfigError(f"{path} has no evaluation rows; remove --eval-file or add JSONL lines with an 'input' field")
    return texts


def _run_build(description, options, settings, reporter, push_to_hub, quiet, embed=True):
    from .catalog import open_catalog
    from .curate import curate
    from .llm import open_llm
    from .pipeline import build as run_build
    from .retrieve import make_retriever

    _quiet_libraries()
    catalog = open_catalog(settings.catalog)
    llm = open_llm(settings)
    vote = None
    if options.rerank:
        from .retrieve import llm_voter

        vote = llm_voter(llm)
    retriever = make_retriever(catalog, benchmark=options.benchmark, reporter=reporter, vote=vote)
    topup = None
    if options.synthetic:
        from .topup import topup as topup_fn

        topup = topup_fn
    try:
        embedder = None
        if embed and not options.dry_run:
            from .embed import get_embedder

            embedder = get_embedder()
        result = run_build(description, catalog=catalog, llm=llm, retriever=retriever, options=options, reporter=reporter,
                           curate_fn=curate, topup_fn=topup, embedder=embedder)
    finally:
        if not quiet:
            _echo_err(llm.usage.summary_line())
    if result.dry_run:
        _print_dry_run(result, llm)
        return
    if push_to_hub:
        from .publish import push as push_folder

        url = push_folder(result.out, push_to_hub)
        _echo_err(f"pushed to {url}")
    rows = sum(result.manifest["rows"].values())
    if not quiet:
        _echo_err(f"wrote {rows} rows to {result.out} in {result.manifest['wall_s']}s")
    click.echo(str(result.out))


def _print_dry_run(result, llm):
    from .output import plan_summary

    click.echo(f"task: {result.spec.output_kind} {result.spec.labels or ''} language={result.spec.language}")
    click.echo(f"{'rank':>4}  {'dataset:config':45} {'keep':5} plan / reason")
    for p in result.plans:
        click.echo(f"{p.rank:>4}  {p.key[:45]:45} {'yes' if p.keep else 'no':5} {plan_summary(p)[:110]}")
    est = result.estimate
    click.echo("estimated rows per source: " + ", ".join(f"{k}={v}" for k, v in est.get("rows_per_source", {}).items()))
    click.echo(f"estimated rows: {est.get('rows_total', 0)}; LLM calls so far: {llm.usage.calls} "
               f"(+{llm.usage.cache_hits} cached); estimated per-row LLM calls for execution: {est.get('llm_calls_execute', 0)}")


# -- search / index ---------------------------------------------------------------------------
@main.command()
@click.argument("description")
@catalog_option
@click.option("-k", "top_k", type=click.IntRange(1), default=10, show_default=True, help="Results to show.")
@click.option("--license", "licenses", multiple=True, help="Only these licences (repeatable).")
@click.option("--language", "languages", multiple=True, help="Only datasets in these languages (repeatable).")
@click.option("--task-category", "task_categories", multiple=True, help="Only these Hub task categories (repeatable).")
@click.option("--exclude", multiple=True, metavar="NAME", help="Never show this dataset (repeatable).")
@click.option("--benchmark", metavar="NAME", help="The task comes from this benchmark: hide its copies.")
@click.option("--with-rows", is_flag=True, help="Only datasets whose rows the catalog has.")
@click.option("--rerank", is_flag=True, help="Rerank the top candidates by LLM self-consistency votes (DataTune's rerank).")
@click.option("--votes", type=click.IntRange(1, 15), default=5, show_default=True, help="LLM votes for --rerank.")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@llm_options
def search(description, catalog, top_k, licenses, languages, task_categories, exclude, benchmark, with_rows, rerank, votes, as_json,
           model, base_url, concurrency, max_llm_calls, no_cache):
    """Rank the catalog's datasets for a task DESCRIPTION."""
    from retrieval_index.filters import Filters

    from .catalog import open_catalog
    from .retrieve import RERANK_TOP, open_index

    _quiet_libraries()
    settings = make_settings(catalog, model, base_url, concurrency, max_llm_calls, no_cache)
    index = open_index(open_catalog(settings.catalog), progress=not as_json)
    filters = Filters.make(licenses=licenses, languages=languages, task_categories=task_categories, exclude=exclude,
                           benchmark=benchmark, has_rows=True if with_rows else None)
    from retrieval_index.popularity import hit_downloads, prefer_used

    hits = prefer_used(index.search(description, k=top_k, filters=filters if filters else None), hit_downloads)
    tally = None
    if rerank and hits:
        from retrieval_index.rerank import rerank as rerank_hits

        from .llm import open_llm
        from .retrieve import llm_voter

        llm = open_llm(settings)
        result = rerank_hits(description, hits, llm_voter(llm), votes=votes, top=RERANK_TOP)
        hits, tally = result.hits, result.votes
        if not as_json:
            _echo_err(llm.usage.summary_line())
    if as_json:
        click.echo(json.dumps([{**h.to_dict(), **({"votes": tally[f"{h.dataset_id}::{h.config}"]} if tally else {})} for h in hits], indent=2))
        return
    if tally is not None:
        click.echo(f"votes: {', '.join(f'{k} {v}' for k, v in tally.most_common())}")
    click.echo(f"{'#':>2}  {'dataset':42} {'config':22} {'score':>7}  rows  why")
    for i, h in enumerate(hits, 1):
        click.echo(f"{i:>2}  {h.dataset_id[:42]:42} {h.config[:22]:22} {h.score:7.4f}  {'yes' if h.entry.has_rows else 'no ':4}  {'; '.join(h.why)[:80]}")


@main.group()
def index():
    """The retrieval index over a catalog's cards and schemas."""


@index.command("build")
@catalog_option
@click.option("--force", is_flag=True, help="Rebuild even when the saved index is current.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@click.option("--json", "as_json", is_flag=True, help="Progress and the result as JSON events on stdout.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True, envvar="DATATUNE_ENGINE",
              help="Where card texts are embedded: this process, or the CPUs of a Ray cluster ($DATATUNE_RAY_ADDRESS, else a local runtime).")
def index_build(catalog, force, quiet, as_json, engine):
    """Build or refresh the index (incremental: unchanged documents keep their vectors)."""
    from dataclasses import asdict

    from .catalog import open_catalog
    from .retrieve import open_index

    _quiet_libraries()
    reporter = _reporter(quiet, as_json)
    idx = open_index(open_catalog(make_settings(catalog).catalog), progress=reporter, force=force, engine=engine)
    st = idx.stats
    if as_json:
        reporter.event("index", **{k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(st).items()})
        return
    click.echo(f"{'loaded' if st.loaded else 'built'}: {st.entries} datasets, {st.documents} documents, "
               f"{st.embedded} embedded, {st.reused} reused, {st.seconds:.1f}s")


# -- apply ------------------------------------------------------------------------------------
_FROM_BUILD = " Default: the build's, from plans.json"


@main.command()
@click.argument("plans_file", type=click.Path(path_type=Path))
@click.option("--catalog", "catalog", metavar="PATH", help="Local catalog folder." + _FROM_BUILD + " (else $DATATUNE_CATALOG, else the Hub).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--size", type=int, help="Rows in the built dataset." + _FROM_BUILD + " (1000 for older files).")
@click.option("--seed", type=int, help="Sampling seed: same plans + same seed = same output." + _FROM_BUILD + ".")
@click.option("--validation-fraction", type=float, help="Share of rows in a validation split." + _FROM_BUILD + ".")
@click.option("--per-source-cap", type=float, help="Largest share of --size one source dataset may fill." + _FROM_BUILD + ".")
@click.option("--eval-file", type=click.Path(path_type=Path), help="JSONL of evaluation rows ('input'): the same file as the build's to drop the same rows.")
@click.option("--synthetic/--no-synthetic", default=None, help="Top up with synthetic rows (LLM calls, cached)." + _FROM_BUILD + " (off for older files).")
@click.option("--curate/--no-curate", default=None, help="Near-duplicate, language and contamination filters." + _FROM_BUILD + ".")
@click.option("--embed/--no-embed", default=None, help="MiniLM: orders sources by relevance, card measures." + _FROM_BUILD + " (off for older files).")
@click.option("--verify", type=click.Choice(["off", "flag", "relabel", "drop"]), help="Check labels with the LLM." + _FROM_BUILD + ".")
@click.option("--overwrite", is_flag=True, help="Replace what is in --out.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True, envvar="DATATUNE_ENGINE",
              help="Where compiled plans run: this process, or Ray Data (a local Ray runtime, or $DATATUNE_RAY_ADDRESS's cluster). Same rows.")
@click.option("-q", "--quiet", is_flag=True)
@llm_options
def apply(plans_file, catalog, out, size, seed, validation_fraction, per_source_cap, eval_file, synthetic, curate, embed, verify, overwrite, engine, quiet,
          model, base_url, concurrency, max_llm_calls, no_cache):
    """Run saved plans (a build's plans.json) alone: no retrieval, no planning.

    With the plans.json of a build, the same rows as that build, in the same order and splits: its
    catalog, size, seed and the rest come from the file; a flag given here overrides them."""
    from .pipeline import BuildOptions
    from .plan import BuildRecord, eval_digest, load_plans

    pf = load_plans(plans_file)
    rec = pf.build
    # an older plans.json has no record of its build: apply's defaults as they were (no top-up, no embedder)
    base = rec or BuildRecord(synthetic=False, embed=False)
    eval_texts = _eval_texts(eval_file) if eval_file else []
    if rec is not None and rec.eval_texts and not quiet:
        if not eval_texts:
            _echo_err(f"note: the build dropped rows overlapping {rec.eval_texts} evaluation texts (--eval-file); pass the same file for its rows")
        elif eval_digest(eval_texts) != rec.eval_sha256:
            _echo_err("note: --eval-file differs from the build's evaluation texts; other rows may be dropped")
    options = BuildOptions(
        out=out, size=_given(size, base.size), seed=_given(seed, base.seed),
        validation_fraction=_given(validation_fraction, base.validation_fraction),
        per_source_cap=_given(per_source_cap, base.per_source_cap), splits=base.splits, eval_texts=eval_texts,
        plans_file=plans_file, overwrite=overwrite, synthetic=_given(synthetic, base.synthetic),
        synthetic_fraction=base.synthetic_fraction, synthetic_batch=base.synthetic_batch, curate=_given(curate, base.curate),
        verify=_given(verify, base.verify), verify_budget=base.verify_budget, engine=engine,
    )
    options.validate()
    settings = make_settings(catalog, model, base_url, concurrency, max_llm_calls, no_cache)
    if catalog is None and rec is not None and rec.catalog:
        settings = _catalog_of_build(settings, rec.catalog, plans_file, quiet)
    _run_build(pf.task.description, options, settings, _reporter(quiet, False), None, quiet, embed=_given(embed, base.embed))


def _given(flag, default):
    """A flag's value when it was given (not None), else the build's."""
    return default if flag is None else flag


def _catalog_of_build(settings: Settings, location: str, plans_file: Path, quiet: bool) -> Settings:
    """The catalog the plans were built on; $DATATUNE_CATALOG when that folder is not on this machine."""
    from dataclasses import replace

    from .catalog.hub import HubCatalog
    from .core.errors import ConfigError

    if location == HubCatalog.location:
        return replace(settings, catalog=None)
    if Path(location).expanduser().is_dir():
        return replace(settings, catalog=location)
    if settings.catalog:
        if not quiet:
            _echo_err(f"note: {plans_file} was built on the catalog at {location}, not found here; using $DATATUNE_CATALOG ({settings.catalog})")
        return settings
    raise ConfigError(f"{plans_file} was built on the catalog at {location}, which is not here; pass --catalog PATH (the folder with datasets/ and cards/)")


# -- status -----------------------------------------------------------------------------------
@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(directory, as_json):
    """Show what a build in DIRECTORY has done."""
    from .core.errors import CatalogError
    from .rundir import RunDir

    run = RunDir(directory)
    info = run.read_json("run.json")
    if info is None:
        raise CatalogError(f"{directory} holds no datatune run (no .datatune/run.json); pass the --out of a build")
    plans = run.read_json("plans.json") or []
    out = {
        "description": info.get("description"), "status": info.get("status"), "seed": info.get("seed"),
        "spec": run.read_json("spec.json") is not None,
        "plans": {"planned": len(plans), "kept": sum(1 for p in plans if p.get("keep"))},
        "llm_shards": run.shard_counts(),
        "rows": info.get("rows"),
    }
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"{directory}: {out['status']}  ({out['description']!r}, seed {out['seed']})")
    click.echo(f"  task spec: {'done' if out['spec'] else 'pending'}")
    click.echo(f"  plans: {out['plans']['planned']} planned, {out['plans']['kept']} kept")
    for k, v in out["llm_shards"].items():
        click.echo(f"  llm rows {k}: {v} shards done")
    if out["rows"]:
        click.echo("  rows written: " + ", ".join(f"{s}={n}" for s, n in out["rows"].items()))


# -- cache ------------------------------------------------------------------------------------
@main.group()
def cache():
    """Inspect or clear the LLM response cache."""


@cache.command("info")
def cache_info():
    """Where the cache is, its entries and size."""
    from .core.settings import cache_dir
    from .llm import ResponseCache

    info = ResponseCache(cache_dir("llm")).info()
    click.echo(f"{info['path']}: {info['entries']} entries, {info['bytes'] / 1e6:.1f} MB")


@cache.command("clear")
def cache_clear():
    """Delete every cached LLM response."""
    from .core.settings import cache_dir
    from .llm import ResponseCache

    n = ResponseCache(cache_dir("llm")).clear()
    click.echo(f"cleared {n} entries")


# -- llm --------------------------------------------------------------------------------------
@main.group()
def llm():
    """The language model datatune uses."""


@llm.command("check")
@click.option("--model", help="Model name, or an embedded model key.")
@click.option("--base-url", help="OpenAI-compatible endpoint (default: embedded).")
@timeout_option
def llm_check(model, base_url):
    """Print the endpoint, the model, a test completion and tokens/s."""
    import time

    from .llm import open_llm

    settings = make_settings(model=model, base_url=base_url).override(use_cache=False)
    client = open_llm(settings)
    t = time.perf_counter()
    text = client.text([{"role": "user", "content": "Write one short sentence about datasets."}], stage="check", max_tokens=48)
    dt = time.perf_counter() - t
    st = client.usage.stage("check")
    click.echo(f"endpoint: {client.endpoint.base_url}{' (embedded)' if client.endpoint.embedded else ''}")
    click.echo(f"model: {client.endpoint.model}")
    click.echo(f"completion: {text}")
    click.echo(f"tokens: {st.prompt_tokens} prompt, {st.completion_tokens} completion in {dt:.2f}s "
               f"({st.completion_tokens / dt if dt else 0:.1f} completion tokens/s)")


# -- push / mirror ----------------------------------------------------------------------------
@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("repo")
@click.option("--private", is_flag=True, help="Create the repo private.")
def push(directory, repo, private):
    """Upload a built dataset folder to the Hub as REPO."""
    from .publish import push as push_folder

    click.echo(push_folder(directory, repo, private=private))


@main.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--to", type=click.Path(path_type=Path), required=True, help="Local catalog folder to fill.")
def mirror(names, to):
    """Download Hub datasets NAME... into a local catalog folder for offline use."""
    from .publish import mirror as mirror_repos

    for p in mirror_repos(list(names), to):
        click.echo(str(p))


# -- eval / report ----------------------------------------------------------------------------
@main.command("eval")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--sample", type=click.IntRange(10), default=1000, show_default=True, help="Rows scored by the O(n^2) measures and embedded.")
@click.option("--no-embed", is_flag=True, help="Skip the MiniLM measures (remote-clique, projection plot).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
def eval_(directory, sample, no_embed, as_json):
    """Quality measures of a built dataset (also written to DIR/quality.json)."""
    from .output import metrics_summary
    from .report import evaluate_folder

    embedder = None
    if not no_embed:
        from .embed import get_embedder

        embedder = get_embedder()
    report = evaluate_folder(directory, embedder=embedder, sample=sample)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    click.echo(f"rows: {report['rows']}  by method: {report['by_method']}")
    click.echo("by source: " + ", ".join(f"{k}={v}" for k, v in report["by_source"].items()))
    dist = report.get("label_distribution") or {}
    if dist.get("counts"):
        click.echo("labels: " + ", ".join(f"{k}={v}" for k, v in dist["counts"].items()))
    for k, v in metrics_summary(report).items():
        click.echo(f"{k}: {v}")
    if report.get("drops"):
        click.echo("drops: " + ", ".join(f"{k}={v}" for k, v in report["drops"].items() if v))


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--html", "as_html", is_flag=True, default=True, help="Render DIR/report.html (the card as one page, plots inlined).")
def report(directory, as_html):
    """Render a built dataset's card as a single HTML page."""
    from .report import render_html

    click.echo(str(render_html(directory)))


if __name__ == "__main__":  # pragma: no cover
    main()
