"""Every class of malformed spec ends in ONE located SpecError from the loader and exit status 2
from the CLI (one `error:` line, no traceback), and never leaves an output file behind.

Each case is (name, spec bytes, text that must appear in the error, marker): the expected line
and column are found from the marker's position in the bytes, independently of the loader
(None: only the file is known, e.g. a file over the size limit).
"""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr
from pathlib import Path

import pytest

import archgraph
from archgraph.cli import main
from archgraph.errors import SpecError

HEAD = b"name: bad\ninputs: {x: [3, 8, 8]}\n"
OK_NODES = b"nodes:\n  a: {op: relu, in: x}\n"

LAUGHS = b"".join(
    [HEAD, b"params:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"]
    + [f"  l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 10)}]\n".encode() for k in range(1, 10)]
    + [OK_NODES]
)

# (id, spec, message fragment, marker: the error points at its first byte; b"": line 1 col 1; -1: the end)
CASES: list[tuple[str, bytes, str, bytes | int | None]] = [
    ("not_yaml_flow", HEAD + b"nodes: {a: {op: relu, in: x}\n", "not valid YAML", -1),  # at the end
    ("not_yaml_indent", HEAD + b"nodes:\n  a: {op: relu}\n b: 3\n", "not valid YAML", b"b: 3"),
    ("empty", b"", "the spec is empty", b""),
    ("only_comments", b"# nothing here\n", "the spec is empty", b""),
    ("root_list", b"- name: bad\n- nodes: {}\n", "must be a mapping at its top level", b""),
    ("root_scalar", b"just some words\n", "must be a mapping at its top level", b""),
    ("two_documents", HEAD + OK_NODES + b"---\nname: other\n", "not valid YAML", b"---"),
    ("nodes_wrong_type", HEAD + b"nodes: [relu, relu]\n", "`nodes` has the wrong type", b"[relu"),
    (
        "arg_wrong_type",
        HEAD + b"nodes:\n  c: {op: conv2d, in: x, out_channels: eight, kernel_size: 3}\n",
        "argument 'out_channels' of op 'conv2d' has the wrong type",
        b"eight",
    ),
    (
        "shape_wrong_type",
        b"name: bad\ninputs: {x: 3}\n" + OK_NODES,
        "shape of input 'x' has the wrong type",
        b"3}",
    ),
    ("missing_nodes", HEAD, "the spec has no `nodes:`", b"name"),
    ("missing_name", b"inputs: {x: [3, 8, 8]}\n" + OK_NODES, "the spec has no `name:`", b"inputs"),
    (
        "missing_required_arg",
        HEAD + b"nodes:\n  c: {op: conv2d, in: x, kernel_size: 3}\n",
        "op 'conv2d' needs argument 'out_channels'",
        b"c: {",
    ),
    (
        "unknown_top_key",
        HEAD + OK_NODES + b"nodez: {}\n",
        "unknown top-level key 'nodez'",
        b"nodez",
    ),
    ("unknown_op", HEAD + b"nodes:\n  a: {op: rleu, in: x}\n", "unknown op 'rleu'", b"rleu"),
    (
        "unknown_block",
        HEAD + b"nodes:\n  a: {block: dense_blok, in: x}\n",
        "unknown block 'dense_blok'",
        b"dense_blok",
    ),
    (
        "unknown_arg",
        HEAD + b"nodes:\n  a: {op: relu, in: x, inplace: true}\n",
        "unknown argument 'inplace'",
        b"true}",
    ),
    (
        "dangling_input",
        HEAD + b"nodes:\n  a: {op: relu, in: x}\n  b: {op: relu, in: nope}\n",
        "unknown input name 'nope'",
        b"nope",
    ),
    ("dangling_output", HEAD + OK_NODES + b"outputs: [zz]\n", "unknown output 'zz'", b"zz"),
    (
        "cycle",
        HEAD + b"nodes:\n  a: {op: relu, in: c}\n  b: {op: relu, in: a}\n  c: {op: relu, in: b}\n",
        "the wiring has a cycle: a -> b -> c -> a",
        b"a: {",
    ),
    ("self_loop", HEAD + b"nodes:\n  a: {op: relu, in: a}\n", "the wiring has a cycle", b"a: {"),
    (
        "zero_stride",
        HEAD + b"nodes:\n  c: {op: conv2d, in: x, out_channels: 4, kernel_size: 3, stride: 0}\n",
        "window sizes must be positive",
        b"c: {op: conv2d",
    ),
    (
        "zero_pool_stride",
        HEAD + b"nodes:\n  p: {op: maxpool2d, in: x, kernel_size: 2, stride: 0}\n",
        "pooling window does not fit its arguments",
        b"p: {op: maxpool2d",
    ),
    (
        "shape_mismatch",
        HEAD + b"nodes:\n  a: {op: maxpool2d, in: x, kernel_size: 2}\n  s: {op: add, in: [a, x]}\n",
        "add of mismatched shapes",
        b"[a, x]",
    ),
    (
        "channel_mismatch",
        HEAD + b"nodes:\n  a: {op: conv2d, in: x, out_channels: 4, kernel_size: 1}\n"
        b"  s: {op: add, in: [a, x]}\n",
        "channels (dim 1) differ",
        b"[a, x]",
    ),
    (
        "rank_mismatch",
        HEAD
        + b"nodes:\n  f: {op: flatten, in: x}\n  c: {op: conv2d, out_channels: 4, kernel_size: 1}\n",
        "input must be NCHW",
        b"c: {",
    ),
    (
        "absurd_channels",
        HEAD + b"nodes:\n  c: {op: conv2d, in: x, out_channels: 100000000000, kernel_size: 3}\n",
        "too large",
        b"c: {",
    ),
    (
        "absurd_input",
        b"name: bad\ninputs: {x: [3, 100000, 100000]}\n" + OK_NODES,
        "input 'x' is too large",
        b"[3, 1",
    ),
    (
        "absurd_repeat",
        HEAD + b"blocks:\n  u: {nodes: {r: {op: relu, in: input}}}\n"
        b"nodes:\n  a: {block: u, in: x, repeat: 1000000000}\n",
        "repeat count out of range",
        b"1000000000",
    ),
    (
        "zero_size",
        HEAD + b"nodes:\n  c: {op: conv2d, in: x, out_channels: 0, kernel_size: 3}\n",
        "out_channels",
        b"c: {",
    ),
    (
        "deep_flow",
        HEAD + b"nodes: {a: {op: relu, in: x, z: " + b"[" * 5000 + b"]" * 5000 + b"}}\n",
        "nested too deeply",
        len(HEAD) + 32 + 61,
    ),  # the 65th level: the 62nd '[' after 3 mappings
    (
        "deep_block",
        HEAD + b"nodes:\n" + b"".join(b"  " * (k + 1) + b"k%d:\n" % k for k in range(100)),
        "nested too deeply",
        b"k62:",
    ),  # the key k62 is the 65th level
    (
        "billion_laughs",
        LAUGHS,
        "too many YAML values (an alias bomb?)",
        b"&l4",
    ),  # 10**5 + ... values
    ("recursive_alias", HEAD + b"params: {p: &r [1, *r]}\n" + OK_NODES, "recursive alias", b"&r"),
    ("undefined_alias", HEAD + b"params: {p: *nope}\n" + OK_NODES, "not valid YAML", b"*nope"),
    (
        "duplicate_key",
        HEAD + b"nodes:\n  a: {op: relu, in: x}\n  a: {op: gelu, in: x}\n",
        "duplicate key 'a'",
        b"a: {op: gelu",
    ),
    (
        "bom_inside",
        HEAD + b"nodes:\n  a: {op: relu, in: x, z: \xef\xbb\xbfq}\n",
        "U+FEFF ZERO WIDTH NO-BREAK SPACE",
        b"\xef\xbb\xbfq",
    ),
    (
        "nul_byte",
        HEAD + b"nodes:\n  a: {op: relu, in: x\x00}\n",
        "character YAML does not allow",
        b"\x00",
    ),
    (
        "bidi_override_string",
        HEAD + b'description: "ok \xe2\x80\xae evil"\n' + OK_NODES,
        "control or invisible character",
        b'"ok',
    ),
    (
        "bidi_in_name",
        HEAD + b"nodes:\n  a\xe2\x80\xaeb: {op: relu, in: x}\n",
        "U+202E RIGHT-TO-LEFT OVERRIDE",
        b"a\xe2\x80\xaeb",
    ),
    (
        "lookalike_name",
        HEAD + b"nodes:\n  c\xd0\xbenv: {op: relu, in: x}\n",
        "U+043E CYRILLIC SMALL LETTER O",
        b"c\xd0\xbenv",
    ),
    (
        "zero_width_name",
        HEAD + b"nodes:\n  a\xe2\x80\x8bb: {op: relu, in: x}\n",
        "U+200B ZERO WIDTH SPACE",
        b"a\xe2\x80\x8bb",
    ),
    ("non_utf8", HEAD + b"nodes:\n  a: {op: relu, in: x, z: caf\xe9}\n", "not UTF-8", b"\xe9"),
    ("utf16_file", "name: bad\n".encode("utf-16"), "not UTF-8", b""),
    (
        "python_object",
        HEAD + b"params: {p: !!python/object/apply:os.system ['true']}\n" + OK_NODES,
        "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
        b"!!python",
    ),
    (
        "python_name",
        HEAD + b"params: {p: !!python/name:os.system x}\n" + OK_NODES,
        "is not allowed",
        b"!!python",
    ),
    (
        "custom_tag",
        HEAD + b"nodes:\n  a: !op {op: relu, in: x}\n",
        "YAML tag '!op' is not allowed",
        b"!op",
    ),
    (
        "expr_import",
        HEAD
        + b"nodes:\n  a: {op: gelu, in: x, approximate: \"${__import__('os').system('id')}\"}\n",
        "not allowed in a spec expression",
        b'"${',
    ),
    (
        "expr_dunder",
        HEAD + b'params: {p: "${().__class__}"}\n' + OK_NODES,
        "not allowed in a spec expression",
        b'"${',
    ),
    (
        "expr_huge",
        HEAD + b'params: {p: "${9 ** 9 ** 9}"}\n' + OK_NODES,
        "exponent too large",
        b'"${',
    ),
    (
        "op_as_import_path",
        HEAD + b"nodes:\n  a: {op: os.system, in: x}\n",
        "unknown op 'os.system'",
        b"os.system",
    ),
]


def _position(data: bytes, marker: bytes | int) -> tuple[int, int]:
    """1-based line and column (in characters) of the first byte of `marker` (an int: that offset,
    -1: the end)."""
    if isinstance(marker, int):
        at = len(data) if marker == -1 else marker
    else:
        at = data.index(marker) if marker else 0
    line_start = data.rfind(b"\n", 0, at) + 1
    return data.count(b"\n", 0, at) + 1, len(data[line_start:at].decode("utf-8", "replace")) + 1


@pytest.mark.parametrize(
    ("data", "fragment", "marker"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_one_located_error(
    tmp_path: Path, data: bytes, fragment: str, marker: bytes | int | None
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    with pytest.raises(SpecError) as err:
        archgraph.load(path)
    e = err.value
    assert type(e) is SpecError, f"a {type(e).__name__}: {e}"  # not a RuleCrash
    assert fragment in str(e)
    assert e.loc is not None and e.loc.file == str(path)
    if marker is not None:
        assert (e.loc.line, e.loc.col) == _position(data, marker), str(e)

    stderr = io.StringIO()
    with redirect_stderr(stderr):
        status = main(["validate", str(path)])
    text = stderr.getvalue()
    assert status == 2
    assert text.count("error:") == 1 and "Traceback" not in text
    assert text.startswith(f"{path}:{e.loc.line}:" if e.loc.line else str(path))


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(HEAD + OK_NODES + b"# " + b"x" * 2_000_000 + b"\n")
    with pytest.raises(SpecError) as err:
        archgraph.load(path)
    assert (
        "too large" in err.value.message
        and err.value.loc is not None
        and err.value.loc.file == str(path)
    )
    assert "--limit bytes=N" in (err.value.hint or "")
    assert archgraph.load(path, limits=archgraph.Limits(max_bytes=4_000_000)).outputs == ["a"]


def test_a_bom_at_the_start_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + HEAD + OK_NODES)  # editors on Windows write one
    assert archgraph.load(path).outputs == ["a"]


def test_bad_spec_leaves_no_output_files(tmp_path: Path) -> None:
    """A failing compile writes none of its files and leaves an existing one untouched."""
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(HEAD + b"nodes:\n  a: {op: relu, in: nope}\n")
    outputs = {
        flag: tmp_path / name
        for flag, name in [
            ("--json", "p.json"),
            ("--emit-code", "m.py"),
            ("--report", "r.html"),
            ("--trace", "t.json"),
            ("--dot", "g.dot"),
        ]
    }
    outputs["--json"].write_text("previous")
    args = ["compile", str(bad), "--repeats", "1", "--warmup", "0"]
    for flag, path in outputs.items():
        args += [flag, str(path)]
    proc = subprocess.run(
        [sys.executable, "-m", "archgraph.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("error:") == 1 and "unknown input name 'nope'" in proc.stderr
    assert outputs["--json"].read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bad.yaml",
        "p.json",
    ]  # nothing new, no temp files


def test_unwritable_output_is_a_clean_error(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no" / "such" / "dir"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "archgraph.cli",
            "compile",
            "resnet18",
            "--emit-code",
            str(missing_dir / "m.py"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(missing_dir) in proc.stderr
    assert not (tmp_path / "no").exists()
