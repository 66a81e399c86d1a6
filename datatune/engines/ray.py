"""The Ray engine: a split's batches mapped by Ray Data on the workers of a Ray cluster, in source order.

The split's Arrow table (only the columns the plan reads; zero-copy slices of its memory-mapped files,
source.SplitRows, whose pages are given back after each window) goes into the object store a window at a time (`ray.data.from_arrow`), `map_batches` runs the
compiled plan's `map_arrow` over it on the workers, and the mapped tables come back in source order
(`preserve_order`). A window is about WINDOW_BYTES of source, so the object store holds a bounded share
of a large split and the driver's memory follows the window, not the split. A worker that dies is
replaced and its task run again (Ray's task retries): a map is a pure function of its batch.

Per-row LLM fields run as Ray tasks, a chunk of rows each, at most two per CPU of the cluster at once;
each task is a client of the endpoint with the LLM's own concurrency (so requests in flight are bounded
per worker), the shared response cache and a share of the call budget the driver reserves before it
submits the task and settles when the task returns, so `--max-llm-calls` holds across workers. The
embedded model answers from this process (llm/portable.py says why), so its chunks are filled here.

Ray is started once per process: joined at DATATUNE_RAY_ADDRESS when that is set, else a local runtime
with this machine's CPUs (a process that has already called `ray.init` keeps its runtime).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import Counter
from typing import Callable, Iterator, Mapping, Sequence

import datasets
import pyarrow as pa

from ..compile import RowMapper, compile_plan
from ..core.errors import BudgetExceeded, ConfigError, DatatuneError, OfflineError
from ..core.settings import ray_address
from .local import split_rows
from .source import SplitRows

WINDOW_BYTES = 256 * 2**20  # source bytes per Ray dataset: about 1.7M rows of 150-byte reviews
CONNECT_TIMEOUT = 5.0  # seconds to reach DATATUNE_RAY_ADDRESS's head before saying it can't be reached

_lock = threading.Lock()


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"--engine ray needs Ray Data, which is not installed ({e.name or e}); "
                          "install it with `pip install 'ray[data]'` or use --engine local") from None
    return ray


def local_cpus() -> int:
    """The CPUs this process may use (its affinity, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _reachable(address: str) -> None:
    """A one-line error, in seconds, for a head that isn't there (`ray.init` retries for minutes)."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"DATATUNE_RAY_ADDRESS={address!r} is not HOST:PORT (or ray://HOST:PORT, or auto); "
                          "set it to the head node's address, as `ray start --head` prints it")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        raise OfflineError(f"the Ray cluster at DATATUNE_RAY_ADDRESS={address} can't be reached ({e.strerror or type(e).__name__}); "
                           "start it (`ray start --head`), fix the address, or unset it for a local Ray") from None


def ensure_ray():
    """The `ray` module with a runtime started in this process (once): the cluster at DATATUNE_RAY_ADDRESS, or a local one."""
    ray = _import_ray()
    with _lock:
        if ray.is_initialized():
            return ray
        address = ray_address()
        kwargs = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
        if address:
            _reachable(address)
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, TimeoutError) as e:
                raise OfflineError(f"could not join the Ray cluster at DATATUNE_RAY_ADDRESS={address}: "
                                   f"{(str(e).strip().splitlines() or [type(e).__name__])[0][:200]}") from None
        else:
            ray.init(num_cpus=local_cpus(), **kwargs)
    _quiet()
    return ray


def _quiet() -> None:
    """Ray Data's per-dataset INFO lines and progress bars off: the build has its own progress (warnings stay)."""
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "Progress bars disabled": that is intended


class _Mapper:
    """The plan's `map_arrow` as Ray Data calls it on a worker. A `RowMapper` travels as its plan and
    features (a pydantic model and `datasets.Features`, both picklable) and is compiled again where it
    runs; any other mapper travels as it is (cloudpickle)."""

    def __init__(self, mapper):
        self.mapper = mapper

    def __reduce__(self):
        if type(self.mapper) is RowMapper:
            return (_compiled, (self.mapper.plan, self.mapper.features))
        return (_Mapper, (self.mapper,))

    def __call__(self, table: pa.Table) -> pa.Table:
        return self.mapper.map_arrow(table)


def _compiled(plan, features) -> _Mapper:
    return _Mapper(compile_plan(plan, features))


def _windows(rows: SplitRows, batch_size: int, cpus: int) -> Iterator[list[pa.Table]]:
    """The split's rows as lists of Arrow tables (the blocks of one Ray dataset), about WINDOW_BYTES of source per list.

    A window is a zero-copy slice of the split's memory-mapped table (a gather only where the split has
    an indices mapping), so the driver never holds more than one window of its own; the pages it read
    are given back once its blocks are mapped. A block is a whole number of batches, about four per CPU
    of the cluster in a window: fewer, larger tasks than one per batch (a task costs milliseconds of
    scheduling), enough of them to keep every worker busy."""
    n = rows.num_rows
    per_row = max(1, rows.nbytes // max(1, n))
    step = max(batch_size, (WINDOW_BYTES // per_row) // batch_size * batch_size)
    for start in range(0, n, step):
        table = rows.slice(start, min(n, start + step) - start)
        batches = -(-table.num_rows // batch_size)
        block = batch_size * max(1, -(-batches // (4 * cpus)))
        yield [table.slice(i, block) for i in range(0, table.num_rows, block)]
        rows.release()


class RayEngine:
    name = "ray"

    def __init__(self):
        self.ray = ensure_ray()  # at construction: a cluster that can't be reached stops the build before it maps

    def map_split(self, mapper, source: "datasets.Dataset | SplitRows", *, batch_size: int) -> Iterator[pa.Table]:
        import ray.data

        fn = _Mapper(mapper)
        cpus = max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        for window in _windows(split_rows(source, mapper.columns), batch_size, cpus):
            rd = ray.data.from_arrow(window)
            ctx = rd.context
            ctx.execution_options.preserve_order = True  # the mapped batches in source order
            ctx.enable_progress_bars = False
            ctx.print_on_execution_start = False
            # a task whose worker died (a node lost, a process killed) runs again elsewhere (Ray's task
            # retries, 3 by default); an exception the plan raises is not retried and ends the build
            mapped = rd.map_batches(fn, batch_format="pyarrow", batch_size=batch_size, zero_copy_batch=True)
            for out in mapped.iter_batches(batch_format="pyarrow", batch_size=None, prefetch_batches=2):
                yield out

    def map_blocks(self, fn: Callable[[Sequence], object], items: Sequence, *, block: int) -> list:
        """A Ray task per block of `block` items (one block runs here: a task would only add its overhead)."""
        if len(items) <= block:
            return [fn(items)]
        task = self.ray.remote(num_cpus=1)(_apply)
        return self.ray.get([task.remote(fn, items[i:i + block]) for i in range(0, len(items), block)])

    def fill_llm(self, plan, chunks: Mapping[int, list], llm) -> Iterator[tuple[int, list, Counter]]:
        from ..llm.portable import recipe, settle

        cpus = max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        window = 2 * cpus  # tasks in flight: an LLM task mostly waits on its endpoint
        portable = recipe(llm, workers=window)
        if portable is None:
            from .local import LocalEngine

            yield from LocalEngine().fill_llm(plan, chunks, llm)
            return
        task = self.ray.remote(num_cpus=0.5)(_fill_chunk)
        per_row = max(1, len(plan.llm_fields) + int(plan.output is not None and plan.output.kind == "llm"))
        todo = sorted(chunks)
        pending: dict = {}  # ObjectRef -> (chunk index, calls reserved for it)
        reserved = 0
        try:
            while todo or pending:
                while todo and len(pending) < window:
                    need = per_row * len(chunks[todo[0]])
                    left = llm.calls_left
                    allow = need if left is None else min(need, left - reserved)
                    if allow <= 0:
                        break
                    idx = todo.pop(0)
                    pending[task.remote(portable, allow, plan, chunks[idx])] = (idx, allow)
                    reserved += allow
                if not pending:  # the budget is spent and nothing is in flight
                    raise llm.budget_exceeded("execute-llm")
                ready, _ = self.ray.wait(list(pending), num_returns=1)
                idx, allow = pending.pop(ready[0])
                reserved -= allow
                done, drops, spent, error = self.ray.get(ready[0])
                settle(llm, spent)
                if isinstance(error, BudgetExceeded):  # the task's share ran out: so has the build's budget
                    raise llm.budget_exceeded("execute-llm") from error
                if error is not None:
                    raise error
                yield idx, done, drops
        finally:
            for ref in pending:
                self.ray.cancel(ref)


def _apply(fn, items):
    return fn(items)


def _fill_chunk(portable, max_calls: int, plan, rows: list) -> tuple[list, Counter, dict, Exception | None]:
    """On a worker: the chunk's LLM fields filled by an LLM rebuilt from `portable`, with what it sent and
    spent; a build-stopping error (budget, endpoint down) comes back as a value for the driver to raise."""
    from ..execute import fill_llm_fields
    from ..llm.portable import usage_of

    llm = portable.open(max_calls)
    try:
        done, drops = fill_llm_fields(plan, rows, llm)
    except DatatuneError as e:
        return [], Counter(), usage_of(llm), e
    return done, drops, usage_of(llm), None
