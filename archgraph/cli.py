"""The `archgraph` command: a thin shell over the Python API. It parses arguments, checks every
output path (archgraph.outputs) before any work, calls archgraph.api.build once, writes what it
made through the output writer and prints. User errors print as located messages (no traceback)
and exit with status 2; no output file is left half-written.

A subcommand is one entry of COMMANDS: its help, a function adding its arguments and the
function that runs it. Output options are declared in a table (OutputOption): each names the
kind of content the Compilation renders for it, and every one is checked before work starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from archgraph.sweep import command as sweep_command

if TYPE_CHECKING:
    from archgraph.outputs import OutputPlan

EXIT_USAGE = 2


@dataclass(frozen=True)
class OutputOption:
    """An option naming a path to write: `kind` is what Compilation.render makes for it."""

    option: str
    kind: str
    help: str
    metavar: str = "PATH"
    required: bool = False

    @property
    def dest(self) -> str:
        return self.option.lstrip("-").replace("-", "_")


COMPILE_OUTPUTS = (
    OutputOption("--json", "json", "write the profile as JSON"),
    OutputOption("--emit-code", "code", "write the generated module's Python code"),
    OutputOption(
        "--emit-kernels",
        "kernels",
        "write every generated CUDA kernel source, one file per fused group, into a new folder "
        "(or one archgraph wrote before, which is replaced)",
        metavar="DIR",
    ),
    OutputOption("--report", "report", "write a self-contained HTML report (graph and node table)"),
    OutputOption("--trace", "trace", "write a Chrome trace (JSON) of one measured run"),
    OutputOption("--dot", "dot", "write the graph as Graphviz DOT"),
    OutputOption(
        "--emit-spec", "spec", "write the (rewritten, pruned) architecture as a YAML spec"
    ),
)
EXPORT_OUTPUTS = (
    OutputOption("--onnx", "onnx", "write the model as ONNX (dynamic batch)", required=True),
)


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
        "edges, repeat, tensor_elements, expr_chars, expr_items, expr_work; repeatable)",
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


def _add_outputs(p: argparse.ArgumentParser, outputs: Sequence[OutputOption]) -> None:
    for o in outputs:
        p.add_argument(o.option, metavar=o.metavar, required=o.required, help=o.help)


def _add_compile_args(c: argparse.ArgumentParser) -> None:
    _add_spec_args(c)
    _add_opt_level(c)
    c.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    c.add_argument("--profile", action="store_true", help="measure and print a per-node table")
    _add_outputs(c, COMPILE_OUTPUTS)
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
        "--passes",
        metavar="A,B,C",
        help="run exactly these passes instead of the -O level's pipeline",
    )
    c.add_argument(
        "--explain",
        action="store_true",
        help="print what each pass changed (nodes, fusions, bytes, time)",
    )
    c.add_argument(
        "--rewrite",
        metavar="NAME",
        action="append",
        default=[],
        help="rewrite the architecture before compiling: dense-to-osa | sparse-wide=S (repeatable)",
    )
    c.add_argument(
        "--prune",
        metavar="KIND=R[,k=v]",
        action="append",
        default=[],
        help="channels=RATIO[,importance=l1|l2|random][,scope=layer|global] or "
        "weights=SPARSITY[,method=magnitude|random-erk][,scope=layer|global]",
    )


def _add_export_args(e: argparse.ArgumentParser) -> None:
    _add_spec_args(e)
    _add_opt_level(e)
    _add_outputs(e, EXPORT_OUTPUTS)


def _add_train_args(t: argparse.ArgumentParser) -> None:
    from archgraph.train.cli import add_arguments as add_train_arguments

    _add_spec_args(t)
    _add_opt_level(t)
    add_train_arguments(t)


def _no_args(p: argparse.ArgumentParser) -> None:
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archgraph", description="A graph-based neural architecture compiler."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help))
    for p in sub.choices.values():
        p.add_argument(
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


def _inputs(args: argparse.Namespace) -> dict[str, list[Path]]:
    """The files a command reads, which no output may overwrite: the spec, the plugins."""
    from archgraph.spec import resolve_source

    plugins = []
    for name in args.plugins:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None) if module else name
        if file and (file.endswith(".py") or "/" in file):
            plugins.append(Path(file))
    return {"the input spec": [resolve_source(args.spec)], "a plugin": plugins}


def _check_outputs(args: argparse.Namespace, outputs: Sequence[OutputOption]) -> OutputPlan:
    """Every output path of the command, checked before any work (see archgraph.outputs)."""
    from archgraph.api import FOLDER_KINDS
    from archgraph.outputs import OutputPlan

    def paths(folder: bool) -> dict[str, Any]:
        return {
            o.option: getattr(args, o.dest) for o in outputs if (o.kind in FOLDER_KINDS) == folder
        }

    return OutputPlan.check(paths(False), folders=paths(True), inputs=_inputs(args))


def _write(plan: OutputPlan, compilation: Any, outputs: Sequence[OutputOption]) -> dict[str, Any]:
    """Render every requested output, then write them all; returns what was written."""
    contents = {o.option: compilation.render(o.kind) for o in outputs if o.option in plan}
    plan.write(contents)
    return contents


def cmd_compile(args: argparse.Namespace) -> int:
    """Check every option and output path, build once, write the outputs, print."""
    from archgraph.api import Measure, build
    from archgraph.passes import explain
    from archgraph.passes.prune.options import parse_prune
    from archgraph.profile.compare import parse_against, parse_opt_level
    from archgraph.profile.report import human
    from archgraph.spec.limits import limits_from

    prunes = [parse_prune(text) for text in args.prune]
    compare = None if args.compare is None else parse_opt_level(args.compare)
    against = tuple(parse_against(args.against)) if args.against else ()
    measure = Measure(args.device, args.warmup, args.repeats, compare, against)
    measured = bool(
        args.profile or args.json or args.report or args.trace or args.compare or against
    )
    limits = limits_from(args.limits)
    plan = _check_outputs(args, COMPILE_OUTPUTS)

    out = _console()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeRemainingColumn(),
        console=_console(stderr=True),
        transient=True,
        disable=not measured,
    ) as bar:
        task = bar.add_task("measuring", total=None)
        c = build(
            args.spec,
            args.opt_level,
            batch=args.batch,
            params=dict(args.params),
            limits=limits,
            rewrites=args.rewrite,
            prunes=prunes,
            passes=args.passes,
            passes_origin="--passes",
            measure=measure if measured else None,
            depth=args.depth,
            say=lambda line: out.print(line, markup=False),
            progress=lambda what, done, total: bar.update(
                task, description=what, completed=done, total=total
            ),
        )
    written = _write(plan, c, COMPILE_OUTPUTS)
    if args.emit_spec:
        out.print(f"wrote the architecture as a spec to {args.emit_spec} ({len(c.graph)} nodes)")
    if args.emit_kernels:
        count = len(written["--emit-kernels"]) - 1  # the index is not a kernel
        out.print(f"wrote {count} kernel file(s) to {args.emit_kernels}")
    if args.profile or compare is not None or against:
        c.profile.print_table(out)
    else:
        data = c.profile.to_json()
        out.print(
            f"{c.graph.name}: {len(c.graph)} nodes, params {data['params']:,}, "
            f"MACs {human(data['macs'])}, compiled at -O{args.opt_level} in "
            f"{data['compile_s'] * 1e3:.0f} ms"
        )
        note = _params_note(c.graph, data["params"], args.opt_level)
        if note:
            out.print(note)
        if data["uncounted"]:
            out.print(
                f"NOT COUNTED in MACs/FLOPs: {', '.join(u['id'] for u in data['uncounted'])} "
                "(see --profile)"
            )
    if args.explain and c.pass_reports:
        out.print(explain(c.pass_reports), markup=False)
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
    from archgraph.api import build
    from archgraph.spec.limits import limits_from

    limits = limits_from(args.limits)
    plan = _check_outputs(args, EXPORT_OUTPUTS)
    c = build(args.spec, args.opt_level, batch=args.batch, params=dict(args.params), limits=limits)
    _write(plan, c, EXPORT_OUTPUTS)
    graph = c.graph
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

    names = archgraph.zoo()
    width = max(len(name) for name in names)
    for name in names:  # one line each, never wrapped: the description names the paper
        path = zoo_path(name)
        spec = parse_yaml(path.read_text(), str(path))
        print(f"{name:<{width}}  {spec.get('description', '')}")
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


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line help, what adds its arguments, what runs it (exit status)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {
    "compile": Command(
        "compile a spec to a torch.fx module; optionally profile it", _add_compile_args, cmd_compile
    ),
    "export": Command(
        "export a compiled spec (ONNX, for Netron and ONNX Runtime)", _add_export_args, cmd_export
    ),
    "train": Command(
        "train a spec (digits or an image folder), optionally sparse", _add_train_args, cmd_train
    ),
    "validate": Command("check a spec and print a one-line summary", _add_spec_args, cmd_validate),
    "sweep": Command(
        "run a design-space sweep (docs/sweeps.md)", sweep_command.add_arguments, sweep_command.run
    ),
    "zoo": Command("list the built-in specs", _no_args, cmd_zoo),
    "ops": Command("list the registered ops", _no_args, cmd_ops),
    "schema": Command(
        "print the JSON Schema of specs (for editors: docs/editor-support.md)", _no_args, cmd_schema
    ),
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
        return COMMANDS[args.command].run(args)
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
