"""The `archgraph` command: a thin shell over the Python API. User errors print as located
messages (no traceback) and exit with status 2; no output file is left half-written."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

EXIT_USAGE = 2


def _param(text: str) -> tuple[str, Any]:
    """`name=value` with value parsed as YAML scalar (so 10 is an int, true a bool)."""
    import yaml

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, found {text!r}")
    key, _, raw = text.partition("=")
    return key.strip(), yaml.safe_load(raw) if raw else ""


def _add_spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC", help="a spec file or a zoo name (see `archgraph zoo`)")
    p.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    p.add_argument("--set", dest="params", type=_param, action="append", default=[], metavar="NAME=VALUE",
                   help="override a spec parameter, e.g. --set num_classes=10 (repeatable)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archgraph", description="A graph-based neural architecture compiler.")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="compile a spec to a torch.fx module; optionally profile it")
    _add_spec_args(c)
    c.add_argument("-O", dest="opt_level", type=int, default=0, metavar="N", help="optimization level (default 0)")
    c.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    c.add_argument("--profile", action="store_true", help="measure and print a per-node table")
    c.add_argument("--json", metavar="PATH", help="write the profile as JSON")
    c.add_argument("--emit-code", metavar="PATH", help="write the generated module's Python code")
    c.add_argument("--emit-kernels", metavar="DIR", help="write every generated CUDA kernel source, one file per fused group")
    c.add_argument("--repeats", type=int, default=20, help="timed runs after warm-up (default 20)")
    c.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs (default 3)")
    c.add_argument("--passes", metavar="A,B,C", help="run exactly these passes instead of the -O level's pipeline")
    c.add_argument("--explain", action="store_true", help="print what each pass changed (nodes, fusions, bytes, time)")
    from archgraph.passes.prune.cli import add_arguments as add_transform_arguments

    add_transform_arguments(c)  # --rewrite, --prune, --emit-spec

    v = sub.add_parser("validate", help="check a spec and print a one-line summary")
    _add_spec_args(v)

    sub.add_parser("zoo", help="list the built-in specs")
    sub.add_parser("ops", help="list the registered ops")
    return parser


def _console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=160 if not sys.stdout.isatty() else None)


def _load(args: argparse.Namespace):  # noqa: ANN202 - Graph, imported lazily
    import archgraph

    return archgraph.load(args.spec, batch=args.batch, **dict(args.params))


def cmd_compile(args: argparse.Namespace) -> int:
    """compile under the pass context of --passes; with --explain, the main compile's reports."""
    from archgraph.passes import explain, pass_context

    reports: list = []
    with pass_context(args.passes, reports=reports, origin="--passes"):
        status = _compile_and_profile(args)
    if args.explain and reports:
        _console().print(explain(reports[0]), markup=False)
    return status


def _compile_and_profile(args: argparse.Namespace) -> int:
    from archgraph.profile import profile
    from archgraph.profile.report import human, write_atomic

    out = _console()
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            from archgraph.errors import ArchgraphError

            raise ArchgraphError("--device cuda needs a CUDA GPU, and none is visible", hint="use --device cpu")
    graph = _load(args)
    from archgraph.passes.prune.cli import transform

    graph = transform(args, graph, lambda line: out.print(line, markup=False))
    measure = args.profile or args.json is not None
    if args.repeats < 1 or args.warmup < 0:
        from archgraph.errors import ArchgraphError

        raise ArchgraphError("--repeats must be >= 1 and --warmup >= 0", found=f"{args.repeats}, {args.warmup}")
    steps = 2 * (args.warmup + args.repeats)
    with Progress(TextColumn("measuring"), BarColumn(), TimeRemainingColumn(), console=_console(stderr=True),
                  transient=True, disable=not measure) as bar:
        task = bar.add_task("measure", total=steps)
        result = profile(graph, opt_level=args.opt_level, device=args.device, warmup=args.warmup,
                         repeats=args.repeats, measure=measure, progress=lambda: bar.advance(task))
    if args.emit_code:
        from archgraph.api import compile as compile_graph

        write_atomic(args.emit_code, compile_graph(graph, args.opt_level).code.lstrip("\n"))
    if args.emit_kernels:
        from archgraph.api import IR_KEY
        from archgraph.api import compile as compile_graph
        from archgraph.codegen.kernels.cuda.emit import write_kernels

        count = write_kernels(compile_graph(graph, args.opt_level).meta[IR_KEY], args.emit_kernels)
        out.print(f"wrote {count} kernel file(s) to {args.emit_kernels}")
    if args.json:
        result.write_json(args.json)
    if args.profile:
        result.print_table(out)
    else:
        data = result.to_json()
        out.print(f"{graph.name}: {len(graph)} nodes, params {data['params']:,}, MACs {human(data['macs'])}, "
                  f"compiled at -O{args.opt_level} in {data['compile_s'] * 1e3:.0f} ms")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from archgraph.profile import node_costs, totals
    from archgraph.profile.report import human

    graph = _load(args)
    t = totals(node_costs(graph))
    outs = ", ".join(f"{o} {graph[o].type}" for o in graph.outputs)
    _console().print(f"ok: {graph.name}: {len(graph)} nodes, params {t.params:,}, MACs {human(t.macs)}; outputs {outs}")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    import archgraph
    from archgraph.spec import zoo_path
    from archgraph.spec.yaml_source import parse_yaml

    out = _console()
    for name in archgraph.zoo():
        path = zoo_path(name)
        spec = parse_yaml(path.read_text(), str(path))
        out.print(f"{name:<24} {spec.get('description', '')}")
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    from archgraph.ops import get_op, op_names

    out = _console()
    for name in op_names():
        op = get_op(name)
        sig = ", ".join(k if a.required else f"{k}={a.default!r}" for k, a in op.args.items())
        out.print(f"{name:<20} {op.doc}" + (f"  ({sig})" if sig else ""))
    return 0


COMMANDS = {"compile": cmd_compile, "validate": cmd_validate, "zoo": cmd_zoo, "ops": cmd_ops}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from archgraph.errors import ArchgraphError

    try:
        return COMMANDS[args.command](args)
    except ArchgraphError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
