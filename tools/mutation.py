"""Mutation testing for wsframed: change one thing in one line, run the tests that own it.

    python tools/mutation.py wsframed/codecs/length.py            # one module
    python tools/mutation.py wsframed/codecs/lines.py --list      # the mutants, no run
    python tools/mutation.py wsframed/stream.py --lines 300-420   # part of a module
    python tools/mutation.py --all                                # every mapped module
    python tools/mutation.py wsframed/codecs/lines.py --json out.json   # keep the results
    python tools/mutation.py wsframed/codecs/lines.py --retry out.json  # rerun survivors

Run by hand (not in CI): each mutant reruns the module's own test files, so a module
takes minutes (length.py: about 130 mutants x 2 s). A survivor is a change to the code
that no test notices: either a test is missing (write it: the behaviour, its error
path, its worst input) or the mutant is equivalent (say why in docs/contributing.md).

How it works: the tracked files are copied to a temporary directory once; each mutant
is one edit of the module's source text at an AST node (so comments and layout stay),
written into the copy, and the module's test files run there with ``pytest -x``
(PYTHONPATH and the working directory are the copy; no bytecode is written, so a stale
.pyc can never hide a mutant). A mutant is *killed* when pytest fails or exceeds
``--timeout-factor`` times the clean run, *survived* when the tests pass.

Mutation operators (the kinds of bug the suite should catch on error, close and limit
paths): comparison flips (``<`` / ``<=``, ``==`` / ``!=``, ``is`` / ``is not``, ``in``
/ ``not in``), arithmetic swaps (``+`` / ``-``, ``*`` / ``//``), integer constants
off by one, ``True`` / ``False``, ``and`` / ``or``, dropping a ``not``, ``raise`` and
``return value`` and a call statement replaced by ``pass`` / ``return None``,
``break`` / ``continue``. Docstrings, annotations and log/exception message text are
left alone.

No dependency beyond the test suite's. mutmut and cosmic-ray were the alternatives:
both want their own copy layout or session database and their own test command,
while this suite needs PYTHONPATH set to the tree under test and per-module test
selection; a 300-line runner over ``ast`` does exactly that.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each module under test -> the test files that own its behaviour. Keep it current: a
# module's mutants only run these files, so a missing file shows up as survivors.
SURVIVORS = "tests/test_mutation_survivors.py"  # tests written for earlier survivors
MODULE_TESTS: dict[str, list[str]] = {
    "wsframed/codecs/length.py": ["tests/test_codec_length.py", SURVIVORS],
    "wsframed/codecs/lines.py": [  # JsonLinesCodec is built on its decoder
        "tests/test_codec_lines.py", "tests/test_codec_jsonl.py", SURVIVORS,
    ],
    "wsframed/codecs/bytes.py": ["tests/test_codec_bytes.py"],
    "wsframed/codecs/jsonl.py": ["tests/test_codec_jsonl.py", "tests/test_codec_objects.py"],
    "wsframed/codecs/msgpack.py": [
        "tests/test_codec_msgpack.py",
        "tests/test_codec_objects.py",
        "tests/test_hostile_input.py",
    ],
    "wsframed/codecs/cbor.py": [
        "tests/test_codec_cbor.py",
        "tests/test_codec_objects.py",
        "tests/test_hostile_input.py",
    ],
    "wsframed/codecs/rope.py": ["tests/test_codec_length.py", "tests/test_codec_lines.py"],
    "wsframed/stream.py": ["tests/test_stream.py", "tests/test_faults.py"],
    "wsframed/framed.py": ["tests/test_framed.py"],
    "wsframed/server.py": ["tests/test_framed.py", "tests/test_hostile_input.py"],
    "wsframed/client.py": ["tests/test_framed.py"],
    "wsframed/rpc.py": ["tests/test_rpc.py"],
    "wsframed/bridge/pumping.py": ["tests/test_bridge.py"],
    "wsframed/bridge/server.py": ["tests/test_bridge.py"],
}

COMPARE_SWAP: dict[type[ast.cmpop], tuple[type[ast.cmpop], str]] = {
    ast.Lt: (ast.LtE, "<="),
    ast.LtE: (ast.Lt, "<"),
    ast.Gt: (ast.GtE, ">="),
    ast.GtE: (ast.Gt, ">"),
    ast.Eq: (ast.NotEq, "!="),
    ast.NotEq: (ast.Eq, "=="),
    ast.Is: (ast.IsNot, "is not"),
    ast.IsNot: (ast.Is, "is"),
    ast.In: (ast.NotIn, "not in"),
    ast.NotIn: (ast.In, "in"),
}
OPERATOR_TEXT: dict[type[ast.AST], str] = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//",
}
BINOP_SWAP: dict[type[ast.operator], str] = {
    ast.Add: "-", ast.Sub: "+", ast.Mult: "//", ast.FloorDiv: "*",
}
LOGGING = {"debug", "info", "warning", "error", "exception", "critical", "log"}


@dataclass
class Mutant:
    module: str
    line: int
    original: str  # the source text replaced
    replacement: str
    start: int  # offsets into the module's source
    end: int
    status: str = "pending"  # killed | survived | timeout | pending
    seconds: float = 0.0

    def describe(self) -> str:
        return f"{self.module}:{self.line}: {self.original!r} -> {self.replacement!r}"


class Offsets:
    """(line, col) of the ast, in UTF-8 bytes, to offsets into the source string."""

    def __init__(self, source: str):
        self.source = source
        self.lines = source.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def at(self, line: int, col_bytes: int) -> int:
        text = self.lines[line - 1].encode()[:col_bytes].decode()
        return self.starts[line - 1] + len(text)

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.at(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.at(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end


def skipped_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, message text, log calls."""
    skip: set[int] = set()

    def skip_all(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            skip_all(first)  # a docstring (or a bare constant: nothing to mutate)
        if isinstance(node, ast.AnnAssign):
            skip_all(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            skip_all(node.returns)
            for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                skip_all(arg.annotation)
            for star in (node.args.vararg, node.args.kwarg):
                if star is not None:
                    skip_all(star.annotation)
        if isinstance(node, ast.JoinedStr):
            skip_all(node)  # message text
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in LOGGING:
                skip_all(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip_all(node)
    return skip


def mutants_of(module: str, source: str, lines: range | None = None) -> list[Mutant]:
    tree = ast.parse(source)
    offsets = Offsets(source)
    skip = skipped_nodes(tree)
    found: list[Mutant] = []

    def add(node: ast.AST, start: int, end: int, replacement: str) -> None:
        line = source.count("\n", 0, start) + 1
        if lines is not None and line not in lines:
            return
        found.append(Mutant(module, line, source[start:end], replacement, start, end))

    def operator_between(left: ast.AST, right: ast.AST, text: str) -> tuple[int, int] | None:
        """Offsets of the operator ``text`` in the gap between two operands (which holds
        only brackets, blanks and the operator)."""
        gap_start, gap_end = offsets.span(left)[1], offsets.span(right)[0]
        index = source.find(text, gap_start, gap_end)
        return None if index == -1 else (index, index + len(text))

    for node in ast.walk(tree):
        if id(node) in skip or not hasattr(node, "lineno"):
            continue
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for i, op in enumerate(node.ops):
                _, text = COMPARE_SWAP[type(op)]
                where = operator_between(operands[i], operands[i + 1], OPERATOR_TEXT[type(op)])
                if where:
                    add(node, *where, text)
        elif isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAP:
            where = operator_between(node.left, node.right, OPERATOR_TEXT[type(node.op)])
            if where:
                add(node, *where, BINOP_SWAP[type(node.op)])
        elif isinstance(node, ast.BoolOp):
            text = "and" if isinstance(node.op, ast.And) else "or"
            for left, right in zip(node.values, node.values[1:], strict=False):
                where = operator_between(left, right, text)
                if where:
                    add(node, *where, "or" if text == "and" else "and")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            start, end = offsets.span(node)
            operand_start = offsets.span(node.operand)[0]
            add(node, start, operand_start, "")
        elif isinstance(node, ast.Constant):
            start, end = offsets.span(node)
            if node.value is True or node.value is False:
                add(node, start, end, str(not node.value))
            elif type(node.value) is int and source[start:end].isdigit():
                add(node, start, end, str(node.value + 1))
                if node.value > 0:
                    add(node, start, end, str(node.value - 1))
        elif isinstance(node, ast.Raise):
            add(node, *offsets.span(node), "pass")
        elif isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                add(node, *offsets.span(node), "return None")
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Await):
            add(node, *offsets.span(node), "pass")
        elif isinstance(node, ast.Break):
            add(node, *offsets.span(node), "continue")
        elif isinstance(node, ast.Continue):
            add(node, *offsets.span(node), "break")
    found.sort(key=lambda m: (m.start, m.replacement))
    # drop a mutant whose text does not compile (an operator inside a string, say)
    valid = []
    for mutant in found:
        try:
            text = source[: mutant.start] + mutant.replacement + source[mutant.end :]
            compile(text, mutant.module, "exec")
        except SyntaxError:
            continue
        valid.append(mutant)
    return valid


def copy_tree(destination: Path) -> None:
    """Copy the tracked files (with uncommitted edits) of the repository."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
        capture_output=True, text=True,
    ).stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_file() and "node_modules" not in source.parts:
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    modules = ROOT / "tests" / "interop" / "node_modules"
    if modules.is_dir():
        (destination / "tests" / "interop" / "node_modules").symlink_to(modules)


def run_tests(tree: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "default"),
    }
    env.pop("COVERAGE_PROCESS_START", None)
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    started = time.monotonic()
    try:
        run = subprocess.run(
            command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - started
    return ("survived" if run.returncode == 0 else "killed"), time.monotonic() - started


def mutate(module: str, tests: list[str], lines: range | None, listing: bool,
           factor: float, retry: set[tuple[str, int, int, str]] | None = None) -> list[Mutant]:
    source = (ROOT / module).read_text(encoding="utf-8")
    mutants = mutants_of(module, source, lines)
    if retry is not None:
        mutants = [m for m in mutants if (m.module, m.start, m.end, m.replacement) in retry]
    if listing:
        for mutant in mutants:
            print(mutant.describe())
        return mutants
    with tempfile.TemporaryDirectory(prefix="wsframed-mutation-") as directory:
        tree = Path(directory)
        copy_tree(tree)
        target = tree / module
        status, clean = run_tests(tree, tests, timeout=600)
        if status != "survived":
            sys.exit(f"{module}: the tests fail without any mutant ({status}); fix that first")
        print(f"{module}: {len(mutants)} mutants; clean run {clean:.1f} s over {tests}",
              flush=True)
        try:
            for number, mutant in enumerate(mutants, 1):
                target.write_text(
                    source[: mutant.start] + mutant.replacement + source[mutant.end :],
                    encoding="utf-8",
                )
                mutant.status, mutant.seconds = run_tests(tree, tests, factor * clean + 10)
                if mutant.status == "survived":
                    print(f"  [{number}/{len(mutants)}] SURVIVED {mutant.describe()}", flush=True)
        finally:
            target.write_text(source, encoding="utf-8")
    return mutants


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module paths, as in MODULE_TESTS")
    parser.add_argument("--all", action="store_true", help="every module of MODULE_TESTS")
    parser.add_argument("--tests", nargs="+", help="test files to run instead of the map's")
    parser.add_argument("--lines", help="only lines FIRST-LAST of the module")
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument("--timeout-factor", type=float, default=3.0)
    parser.add_argument("--json", type=Path, help="write every mutant and its status here")
    parser.add_argument(
        "--retry", type=Path, help="only the survivors recorded in this --json file"
    )
    args = parser.parse_args(argv)
    modules = list(MODULE_TESTS) if args.all else args.modules
    if not modules:
        parser.error("name a module or pass --all")
    lines = None
    if args.lines:
        first, _, last = args.lines.partition("-")
        lines = range(int(first), int(last or first) + 1)
    retry = None
    if args.retry:
        retry = {
            (m["module"], m["start"], m["end"], m["replacement"])
            for m in json.loads(args.retry.read_text())
            if m["status"] == "survived"
        }
    results: list[Mutant] = []
    for module in modules:
        tests = args.tests or MODULE_TESTS.get(module)
        if not tests:
            parser.error(f"{module}: not in MODULE_TESTS; pass --tests")
        results += mutate(module, tests, lines, args.list, args.timeout_factor, retry)
    if args.list:
        return 0
    print("\nmodule                          mutants  killed  timeout  survived  score")
    for module in modules:
        mine = [m for m in results if m.module == module]
        killed = sum(m.status == "killed" for m in mine)
        timeout = sum(m.status == "timeout" for m in mine)
        survived = [m for m in mine if m.status == "survived"]
        score = 100 * (killed + timeout) / len(mine) if mine else 100.0
        print(f"{module:32}{len(mine):7}{killed:8}{timeout:9}{len(survived):10}{score:6.1f}%")
    if args.json:
        args.json.write_text(json.dumps([asdict(m) for m in results], indent=1))
    return 1 if any(m.status == "survived" for m in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
