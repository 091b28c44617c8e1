"""The long differential run: N random DAGs (default 10,000) through -O1 and -O2, each compared
with -O0 (tests/passes: weights bound before passes, eval mode, error <= 1e-4 of the output
scale). Prints the count, the worst error per level, the op mix and the wall time.

    bash scripts/dev python benchmarks/diff_long.py --examples 10000 --seed 7
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import torch
from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archgraph.passes import pass_context  # noqa: E402
from tests.passes.differential import check_against_o0  # noqa: E402
from tests.passes.random_graphs import random_graphs, random_weights  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-motifs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)  # graphs are tiny: a second thread only waits on a shared machine
    worst: dict[str, float] = collections.defaultdict(float)
    fused: collections.Counter[str] = collections.Counter()  # groups fused per pass, all runs
    changed: collections.Counter[str] = collections.Counter()  # graphs a pass changed, at -O2
    ops: collections.Counter[str] = collections.Counter()
    nodes: list[int] = []
    start = time.perf_counter()

    @seed(args.seed)
    @settings(
        max_examples=args.examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # every example is a fresh graph; a failure stops the run
        suppress_health_check=list(HealthCheck),
    )
    @given(random_graphs(max_motifs=args.max_motifs))
    def run(graph) -> None:  # noqa: ANN001
        reports: list = []
        with pass_context(reports=reports):
            errors = check_against_o0(graph, random_weights(graph, seed=len(nodes)))
        for r in reports[-1]:  # the -O2 pipeline
            fused[r.name] += r.groups_fused
            changed[r.name] += r.nodes_before != r.nodes_after or r.groups_fused > 0
        for level, err in errors.items():
            worst[level] = max(worst[level], err)
        ops.update(n.op for n in graph.nodes())
        nodes.append(len(graph))
        if len(nodes) % 500 == 0:
            print(f"{len(nodes)} graphs, {time.perf_counter() - start:.0f} s", flush=True)

    run()
    seconds = time.perf_counter() - start
    print(f"graphs: {len(nodes)} (seed {args.seed}), all equal to -O0 within 1e-4 of scale")
    print(f"nodes per graph: mean {sum(nodes) / len(nodes):.1f}, max {max(nodes)}")
    print("worst scaled error: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    print("graphs each -O2 pass changed: " + ", ".join(f"{k} {v}" for k, v in changed.items()))
    print("groups fused per -O2 pass: " + ", ".join(f"{k} {v}" for k, v in fused.items() if v))
    print("op mix: " + ", ".join(f"{op} {n}" for op, n in ops.most_common()))
    print(f"wall time: {seconds:.0f} s ({seconds / len(nodes) * 1e3:.0f} ms per graph)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
