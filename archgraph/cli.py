"""The `archgraph` command: a thin shell over the Python API. User errors print as located
messages (no traceback) and exit with status 2; no output file is left half-written."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from archgraph.sweep import command as sweep_command

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
    p.add_argument(
        "--set",
        dest="params",
        type=_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a spec parameter, e.g. --set num_classes=10 (repeatable)",
    )
    p.add_argument(
        "--limit",
        dest="limits",
        action="append",
        default=[],
        metavar="NAME=N",
        help="raise a spec limit, e.g. --limit nodes=200000 (names: bytes, depth, yaml_nodes, nodes, "
        "edges, repeat, tensor_elements, expr_chars, expr_items; repeatable)",
    )


def _add_opt_level(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-O",
        dest="opt_level",
        type=int,
        default=0,
        metavar="N",
        help="optimization level (default 0)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archgraph", description="A graph-based neural architecture compiler."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="compile a spec to a torch.fx module; optionally profile it")
    _add_spec_args(c)
    _add_opt_level(c)
    c.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    c.add_argument("--profile", action="store_true", help="measure and print a per-node table")
    c.add_argument("--json", metavar="PATH", help="write the profile as JSON")
    c.add_argument("--emit-code", metavar="PATH", help="write the generated module's Python code")
    c.add_argument(
        "--emit-kernels",
        metavar="DIR",
        help="write every generated CUDA kernel source, one file per fused group",
    )
    c.add_argument("--repeats", type=int, default=20, help="timed runs after warm-up (default 20)")
    c.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs (default 3)")
    c.add_argument(
        "--compare",
        metavar="-ON",
        help="also compile at level N and print ratios (e.g. --compare -O0)",
    )
    c.add_argument(
        "--against",
        metavar="LIST",
        help="baselines timed beside it, comma-separated: eager,inductor",
    )
    c.add_argument(
        "--depth", type=int, metavar="N", help="group rows by the first N components of node ids"
    )
    c.add_argument(
        "--report", metavar="PATH", help="write a self-contained HTML report (graph and node table)"
    )
    c.add_argument(
        "--trace", metavar="PATH", help="write a Chrome trace (JSON) of one measured run"
    )
    c.add_argument("--dot", metavar="PATH", help="write the graph as Graphviz DOT")
    c.add_argument(
        "--passes",
        metavar="A,B,C",
        help="run exactly these passes instead of the -O level's pipeline",
    )
    c.add_argument(
        "--explain",
        action="store_true",
        help="print what each pass changed (nodes, fusions, bytes, time)",
    )
    from archgraph.passes.prune.cli import add_arguments as add_transform_arguments

    add_transform_arguments(c)  # --rewrite, --prune, --emit-spec

    e = sub.add_parser("export", help="export a compiled spec (ONNX, for Netron and ONNX Runtime)")
    _add_spec_args(e)
    _add_opt_level(e)
    e.add_argument(
        "--onnx", metavar="PATH", required=True, help="write the model as ONNX (dynamic batch)"
    )

    t = sub.add_parser("train", help="train a spec (digits or an image folder), optionally sparse")
    _add_spec_args(t)
    _add_opt_level(t)
    from archgraph.train.cli import add_arguments as add_train_arguments

    add_train_arguments(t)

    v = sub.add_parser("validate", help="check a spec and print a one-line summary")
    _add_spec_args(v)

    sweep_command.add_arguments(
        sub.add_parser("sweep", help="run a design-space sweep (docs/sweeps.md)")
    )
    sub.add_parser("zoo", help="list the built-in specs")
    sub.add_parser("ops", help="list the registered ops")
    sub.add_parser(
        "schema", help="print the JSON Schema of specs (for editors: docs/editor-support.md)"
    )
    for command in sub.choices.values():
        command.add_argument(
            "--plugin",
            dest="plugins",
            action="append",
            default=[],
            metavar="MODULE",
            help="import a Python module (or .py file) that registers ops and blocks first "
            "(repeatable); specs themselves can never import code",
        )
    return parser


def _console(stderr: bool = False) -> Console:
    return Console(
        stderr=stderr,
        highlight=False,
        soft_wrap=False,
        width=160 if not sys.stdout.isatty() else None,
    )


def _load(args: argparse.Namespace):  # noqa: ANN202 - Graph, imported lazily
    import archgraph
    from archgraph.spec.limits import limits_from

    return archgraph.load(
        args.spec, batch=args.batch, limits=limits_from(args.limits), **dict(args.params)
    )


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

            raise ArchgraphError(
                "--device cuda needs a CUDA GPU, and none is visible", hint="use --device cpu"
            )
    import time

    from archgraph.profile.compare import parse_against, parse_opt_level
    from archgraph.profile.outputs import write_outputs

    start = time.perf_counter()
    graph = _load(args)
    load_s = time.perf_counter() - start
    from archgraph.passes.prune.cli import transform

    graph = transform(args, graph, lambda line: out.print(line, markup=False))
    measure = bool(
        args.profile or args.json or args.report or args.trace or args.compare or args.against
    )
    if args.repeats < 1 or args.warmup < 0 or (args.depth is not None and args.depth < 1):
        from archgraph.errors import ArchgraphError

        raise ArchgraphError(
            "--repeats and --depth must be >= 1 and --warmup >= 0",
            found=f"{args.repeats}, {args.depth}, {args.warmup}",
        )
    compare = None if args.compare is None else parse_opt_level(args.compare)
    against = parse_against(args.against) if args.against else []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeRemainingColumn(),
        console=_console(stderr=True),
        transient=True,
        disable=not measure,
    ) as bar:
        task = bar.add_task("measuring", total=None)
        result = profile(
            graph,
            opt_level=args.opt_level,
            device=args.device,
            warmup=args.warmup,
            repeats=args.repeats,
            measure=measure,
            compare=compare,
            against=against,
            depth=args.depth,
            load_s=load_s,
            progress=lambda what, done, total: bar.update(
                task, description=what, completed=done, total=total
            ),
        )
    if args.emit_code:
        from archgraph.api import compile as compile_graph

        write_atomic(args.emit_code, compile_graph(graph, args.opt_level).code.lstrip("\n"))
    if args.emit_kernels:
        from archgraph.api import IR_KEY
        from archgraph.api import compile as compile_graph
        from archgraph.codegen.kernels.cuda.emit import write_kernels

        count = write_kernels(compile_graph(graph, args.opt_level).meta[IR_KEY], args.emit_kernels)
        out.print(f"wrote {count} kernel file(s) to {args.emit_kernels}")
    write_outputs(
        result,
        json_path=args.json,
        report_path=args.report,
        trace_path=args.trace,
        dot_path=args.dot,
    )
    if args.profile or compare is not None or against:
        result.print_table(out)
    else:
        data = result.to_json()
        out.print(
            f"{graph.name}: {len(graph)} nodes, params {data['params']:,}, MACs {human(data['macs'])}, "
            f"compiled at -O{args.opt_level} in {data['compile_s'] * 1e3:.0f} ms"
        )
        note = _params_note(graph, data["params"], args.opt_level)
        if note:
            out.print(note)
        if data["uncounted"]:
            out.print(
                f"NOT COUNTED in MACs/FLOPs: {', '.join(u['id'] for u in data['uncounted'])} (see --profile)"
            )
    return 0


def _params_note(graph: Any, params: int, opt_level: int) -> str | None:
    """Why the optimized graph's parameter count is not the spec's (what `validate` prints)."""
    from archgraph.profile import node_costs, totals

    written = totals(node_costs(graph)).params
    if params == written:
        return None
    return (
        f"  params {written:,} as written (-O0, as `validate` prints): -O{opt_level} counts the "
        "optimized graph, where each batchnorm is folded into the conv or linear before it"
    )


def cmd_export(args: argparse.Namespace) -> int:
    from archgraph.profile.export import export_onnx

    graph = _load(args)
    export_onnx(graph, args.onnx, opt_level=args.opt_level)
    _console().print(
        f"{graph.name}: wrote ONNX to {args.onnx} (inputs {', '.join(graph.inputs)}; "
        f"outputs {', '.join(graph.outputs)}; batch dimension dynamic)"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from archgraph.train.cli import run

    return run(args, _load)


def cmd_validate(args: argparse.Namespace) -> int:
    from archgraph.profile import node_costs, totals
    from archgraph.profile.report import human

    graph = _load(args)
    t = totals(node_costs(graph))
    outs = ", ".join(f"{o} {graph[o].type}" for o in graph.outputs)
    _console().print(
        f"ok: {graph.name}: {len(graph)} nodes, params {t.params:,}, MACs {human(t.macs)}; outputs {outs}"
    )
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


def cmd_schema(args: argparse.Namespace) -> int:
    from archgraph.spec.schema import schema_text

    sys.stdout.write(schema_text())
    return 0


COMMANDS = {
    "compile": cmd_compile,
    "export": cmd_export,
    "train": cmd_train,
    "validate": cmd_validate,
    "zoo": cmd_zoo,
    "ops": cmd_ops,
    "schema": cmd_schema,
    "sweep": sweep_command.run,
}


def _attach_compare_level(argv: Sequence[str]) -> list[str]:
    """`--compare -O0` as one token: argparse would read the '-O0' as the -O option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--compare" and arg.startswith("-O"):
            out[-1] = f"--compare={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(_attach_compare_level(sys.argv[1:] if argv is None else argv))
    from archgraph.errors import ArchgraphError

    try:
        if args.plugins:
            from archgraph.plugins import load_plugins

            load_plugins(args.plugins)
        return COMMANDS[args.command](args)
    except ArchgraphError as e:
        print(str(e), file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # an output path that cannot be written (a missing folder, no permission)
        where = f"{e.filename}: " if e.filename else ""
        print(f"{where}error: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
