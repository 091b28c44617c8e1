"""`--ray`: the same points as Ray tasks, on a cluster or a local Ray.

Each task asks Ray for `threads` CPUs (num_cpus), so a node never runs more points at once than
it has CPUs for; on each node the tasks also claim and pin disjoint cores (archgraph/sweep/cores.py)
while they measure. Ray is an optional extra: `pip install archgraph[ray]`. Workers import
archgraph themselves, so a cluster's nodes need it installed (and any --plugin file at the same
path).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from archgraph.errors import ArchgraphError
from archgraph.sweep.evaluate import Task, run_task

Done = Callable[[Task, dict[str, Any]], None]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ArchgraphError(
            "--ray needs Ray, which is not installed", hint="pip install 'archgraph[ray]'"
        ) from None
    return ray


class RayEngine:
    """`address`: 'auto' joins the running cluster, or starts a local Ray if there is none; any
    other value is the address of a cluster (host:port or ray://host:port). A Ray the caller has
    already initialized in this process is used as it is."""

    def __init__(self, address: str, threads: int) -> None:
        self.address = address
        self.threads = threads

    def describe(self) -> str:
        return f"Ray tasks ({self.address}), {self.threads} CPU(s) requested per point"

    def _connect(self, ray: Any) -> bool:
        """Make sure Ray is initialized; True if this call started it (and should stop it)."""
        if ray.is_initialized():
            return False
        options = {"log_to_driver": False, "include_dashboard": False}
        try:
            ray.init(address=self.address, **options)
        except ConnectionError:
            if self.address != "auto":
                raise ArchgraphError(
                    f"cannot reach a Ray cluster at '{self.address}'",
                    hint="start one with `ray start --head`, or use --ray auto for a local Ray",
                ) from None
            ray.init(**options)  # no cluster running: a local Ray on this machine
        return True

    def run(self, tasks: Sequence[Task], done: Done) -> None:
        """Run every task; call `done` in the driver as each finishes, in finishing order."""
        ray = _ray()
        started = self._connect(ray)
        pending: list[Any] = []
        try:
            remote = ray.remote(run_task).options(num_cpus=self.threads, max_retries=0)
            refs = {remote.remote(t): t for t in tasks}
            pending = list(refs)
            while pending:
                finished, pending = ray.wait(pending, num_returns=1)
                for ref in finished:
                    try:
                        row = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        raise ArchgraphError(
                            f"a Ray task died: {type(e).__name__}",
                            found=str(e).splitlines()[0] if str(e) else None,
                            hint="the finished points are saved; run again with --resume",
                        ) from None
                    done(refs[ref], row)
        except BaseException:
            for ref in pending:  # an error or Ctrl-C: nothing keeps running for this sweep
                ray.cancel(ref, force=True)
            raise
        finally:
            if started:
                ray.shutdown()
