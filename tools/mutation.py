"""Mutation testing for wsframed: change one thing in one line, run the tests that own it.

    python tools/mutation.py wsframed/codecs/length.py            # one module
    python tools/mutation.py wsframed/codecs/lines.py --list      # the mutants, no run
    python tools/mutation.py wsframed/stream.py --lines 300-420   # part of a module
    python tools/mutation.py wsframed/stream.py --functions readuntil,aclose  # functions
    python tools/mutation.py wsframed/rpc/peer.py --error-paths -x 60   # error/close/limit code
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

Test selection: the module's test files first run once under coverage, each test's
lines recorded under its node id (a small ``-p`` plugin switches coverage's context);
each mutant then runs only the tests that execute its line (in file order, ``-x``),
every mapped file for a line run only at import. The programs a test starts (the
bridge, the CLI) are measured too, each under the node id of the test that started
it (coverage's .pth hook; a program started with an environment of its own is not
seen). A mutant on a line no test executes is *uncovered*, a survivor not run.
``--no-select`` runs every mapped file for each mutant.

Mutation operators (the kinds of bug the suite should catch on error, close and limit
paths): comparison flips (``<`` / ``<=``, ``==`` / ``!=``, ``is`` / ``is not``, ``in``
/ ``not in``), arithmetic swaps (``+`` / ``-``, ``*`` / ``//``), integer constants
off by one, ``True`` / ``False``, ``and`` / ``or``, dropping a ``not``, ``raise`` and
``return value`` and a call statement replaced by ``pass`` / ``return None``,
``break`` / ``continue``. Docstrings, annotations and log/exception message text are
left alone.

Restricting the mutants (a full run of a large module is too slow on a shared machine):
``--lines FIRST-LAST``, ``--functions a,B.b`` (a function, method or class by name or
dotted qualified name, with everything nested in it) and ``--error-paths``, which keeps
only the code of error, close and limit paths: ``except`` and ``finally`` blocks,
``raise`` statements, an ``if`` whose body raises, returns, breaks or closes (its test
and body), a function whose name says close/abort/fail/error/limit/..., and a line
naming a limit, a close, an error or a close code (``ERROR_WORDS``). The filters
combine (a mutant must pass each one given). Each mutant's run may take
``--timeout-factor`` times its selected tests' clean time plus 15 s, and at least
``--per-mutant-timeout`` (``-x``) seconds; a run over that counts as killed.

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
import re
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
MODULE_TESTS: dict[str, list[str]] = {
    "wsframed/codecs/length.py": [
        "tests/test_codec_length.py", "tests/test_length_error_paths.py",
    ],
    "wsframed/codecs/lines.py": [  # JsonLinesCodec is built on its decoder
        "tests/test_codec_lines.py", "tests/test_codec_jsonl.py",
        "tests/test_lines_error_paths.py",
    ],
    "wsframed/codecs/bytes.py": ["tests/test_codec_bytes.py"],
    "wsframed/codecs/jsonl.py": [
        "tests/test_codec_jsonl.py", "tests/test_codec_objects.py",
        "tests/test_mutation_codecs.py",
    ],
    "wsframed/codecs/msgpack.py": [
        "tests/test_codec_msgpack.py",
        "tests/test_codec_objects.py",
        "tests/test_hostile_input.py",
        "tests/test_mutation_codecs.py",
        "tests/test_mutation_msgpack.py",
        "tests/test_codec_encode_many.py",
    ],
    "wsframed/codecs/cbor.py": [
        "tests/test_codec_cbor.py",
        "tests/test_codec_objects.py",
        "tests/test_hostile_input.py",
        "tests/test_mutation_codecs.py",
        "tests/test_mutation_cbor.py",
        "tests/test_codec_encode_many.py",
        "tests/test_cbor_costs.py",  # the conversion policy: keys, sets, numeric/inert tags
    ],
    "wsframed/codecs/rope.py": ["tests/test_codec_length.py", "tests/test_codec_lines.py"],
    # Fastest files first: with -x a killed mutant stops at its first failing test.
    "wsframed/stream.py": [
        "tests/test_stream_behaviours.py", "tests/test_stream_error_paths.py",
        "tests/test_faults.py", "tests/test_stream.py", "tests/test_stream_events_order.py",
        "tests/test_stream_checkpoints.py", "tests/test_stream_reader_parity.py",
        "tests/test_mutation_stream.py",
        "tests/test_stream_families.py",  # ping()'s error path, on both loops
    ],
    "wsframed/stream_core.py": [  # WsStream's sans-I/O state: the stream's own tests
        "tests/test_stream_behaviours.py", "tests/test_stream_error_paths.py",
        "tests/test_faults.py", "tests/test_stream.py", "tests/test_stream_events_order.py",
        "tests/test_stream_checkpoints.py", "tests/test_stream_reader_parity.py",
        "tests/test_mutation_stream.py",
        "tests/test_mutation_bridge.py",  # the bridge's half-close marker (_text_ends_reads)
    ],
    "wsframed/framed.py": ["tests/test_framed.py"],
    "wsframed/server.py": [
        "tests/test_server_failures.py", "tests/test_server_error_paths.py",
        "tests/test_framed.py", "tests/test_ux_routes.py", "tests/test_ux_request.py",
        "tests/test_ux_errors.py", "tests/test_ux_codec_argument.py",
        "tests/test_hostile_input.py",
    ],
    "wsframed/client.py": [
        "tests/test_client_error_paths.py", "tests/test_framed.py",
        "tests/test_ux_reconnect.py", "tests/test_ux_errors.py",
        "tests/test_ux_codec_argument.py",
    ],
    "wsframed/rpc/core.py": [
        "tests/test_rpc_logs.py", "tests/test_rpc_error_paths.py", "tests/test_rpc_bounds.py",
        "tests/test_rpc_checkpoints.py", "tests/test_rpc.py", "tests/test_rpc_lone_send.py",
        "tests/test_mutation_rpc_lone.py", "tests/test_mutation_rpc_races.py",
    ],
    "wsframed/rpc/peer.py": [
        "tests/test_rpc_logs.py", "tests/test_rpc_error_paths.py", "tests/test_rpc_bounds.py",
        "tests/test_rpc_checkpoints.py", "tests/test_rpc.py", "tests/test_rpc_lone_send.py",
        "tests/test_mutation_rpc_lone.py", "tests/test_mutation_rpc_races.py",
    ],
    # The bridge's tests run it in-process and as a program (both count, see tests_by_line).
    "wsframed/bridge/pumping.py": [
        "tests/test_mutation_bridge.py",
        "tests/test_mutation_pump_races.py",  # the supervisor's races, ordered by gates
        "tests/test_bridge_error_paths.py",
        "tests/test_bridge_failures.py", "tests/test_bridge.py", "tests/test_bridge_admission.py",
    ],
    "wsframed/bridge/server.py": [
        "tests/test_bridge_error_paths.py", "tests/test_mutation_bridge.py",
        "tests/test_bridge_failures.py", "tests/test_bridge.py", "tests/test_bridge_admission.py",
    ],
    "wsframed/bridge/admission.py": [
        "tests/test_mutation_bridge.py", "tests/test_mutation_admission.py",
        "tests/test_bridge_admission.py", "tests/test_bridge_error_paths.py",
        "tests/test_bridge_failures.py", "tests/test_bridge.py", "tests/test_bridge_refusal.py",
    ],
    # The three TCP shells: the families file drives each one in-process (fastest first).
    "wsframed/bridge/tcp.py": [
        "tests/test_mutation_tcp.py", "tests/test_bridge_families.py",
        "tests/test_mutation_bridge.py", "tests/test_bridge_error_paths.py",
        "tests/test_bridge_failures.py", "tests/test_bridge.py", "tests/test_bridge_admission.py",
    ],
    "wsframed/bridge/command.py": [
        "tests/test_mutation_bridge.py", "tests/test_bridge_error_paths.py",
        "tests/test_bridge.py", "tests/test_cli_errors.py", "tests/test_cli.py",
    ],
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
# --error-paths: a function with one of these in its name is an error/close/limit path
# as a whole; a line with one of them (or a close code) is one too.
ERROR_WORDS = (
    "abort", "cancel", "close", "closing", "discard", "eof", "error", "exc", "fail",
    "limit", "max_", "overflow", "overrun", "refuse", "reject", "shutdown", "timeout",
    "too_large", "toolarge", "incomplete", "backlog",
)
CLOSE_CODE = re.compile(r"\b(1000|1001|1002|1003|1005|1006|1007|1008|1009|1010|1011|1013)\b")
CLOSING_CALLS = re.compile(r"\b(close|aclose|abort|send_eof|write_eof|cancel|shutdown)\b")


def lines_of(node: ast.AST) -> range:
    return range(node.lineno, (node.end_lineno or node.lineno) + 1)  # type: ignore[attr-defined]


def function_lines(tree: ast.AST, names: set[str]) -> set[int]:
    """The lines of the functions, methods or classes named (``name`` or ``Class.name``)."""
    found: set[int] = set()

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qualname = f"{prefix}{child.name}"
                if child.name in names or qualname in names:
                    found.update(lines_of(child))
                visit(child, qualname + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def error_path_lines(tree: ast.AST, source: str) -> set[int]:
    """The lines of error, close and limit paths (see the module docstring)."""
    found: set[int] = set()
    text = source.splitlines()
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler | ast.Raise):
            found.update(lines_of(node))
        elif isinstance(node, ast.Try | ast.TryStar) and node.finalbody:
            for statement in node.finalbody:
                found.update(lines_of(statement))
        elif isinstance(node, ast.If):
            ends = any(
                isinstance(n, ast.Raise | ast.Return | ast.Break | ast.Continue)
                or (isinstance(n, ast.Call) and CLOSING_CALLS.search(ast.unparse(n.func)))
                for statement in node.body
                for n in ast.walk(statement)
            )
            if ends:
                found.update(lines_of(node.test))
                for statement in node.body:
                    found.update(lines_of(statement))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = node.name.lower()
            if any(word in name for word in ERROR_WORDS):
                found.update(lines_of(node))
    for number, line in enumerate(text, 1):
        code = line.split("#", 1)[0].lower()
        if any(word in code for word in ERROR_WORDS) or CLOSE_CODE.search(code):
            found.add(number)
    return found


@dataclass
class Mutant:
    module: str
    line: int
    original: str  # the source text replaced
    replacement: str
    start: int  # offsets into the module's source
    end: int
    status: str = "pending"  # killed | survived | uncovered | timeout | pending
    seconds: float = 0.0
    runs_at: int = 0  # the line whose tests run it (a default's: its function's body)

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
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr in LOGGING:
                skip_all(node)  # the log statement as a whole too
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip_all(node)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
            "overload" in ast.unparse(d) for d in node.decorator_list
        ):
            skip_all(node)  # typing only: never runs
    return skip


def default_owners(tree: ast.AST) -> dict[int, int]:
    """id of each node of a parameter default -> the first line of its function's body.

    A default is evaluated at import; the tests that call the function are the ones
    that can see it changed, so its mutants run the tests executing that line."""
    owners: dict[int, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            first = body[0]
            if len(body) > 1 and isinstance(first, ast.Expr) and isinstance(
                first.value, ast.Constant
            ):
                first = body[1]  # after the docstring
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None:
                    owners.update((id(n), first.lineno) for n in ast.walk(default))
    return owners


def mutants_of(
    module: str,
    source: str,
    lines: range | None = None,
    functions: set[str] | None = None,
    error_paths: bool = False,
) -> list[Mutant]:
    tree = ast.parse(source)
    offsets = Offsets(source)
    skip = skipped_nodes(tree)
    owners = default_owners(tree)
    found: list[Mutant] = []
    allowed: set[int] | None = None if lines is None else set(lines)
    for chosen in (
        None if functions is None else function_lines(tree, functions),
        error_path_lines(tree, source) if error_paths else None,
    ):
        if chosen is not None:
            allowed = chosen if allowed is None else allowed & chosen

    def add(node: ast.AST, start: int, end: int, replacement: str) -> None:
        line = source.count("\n", 0, start) + 1
        if allowed is not None and line not in allowed:
            return
        mutant = Mutant(module, line, source[start:end], replacement, start, end)
        mutant.runs_at = owners.get(id(node), line)
        found.append(mutant)

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


# Written into the copy and loaded with ``-p``: each test's coverage gets its node id as
# the context, so a mutant runs only the tests that execute its line.
CONTEXT_PLUGIN = """
import os

import coverage

ORDER = []
SECONDS = {}

def pytest_configure(config):
    # The programs the tests start (python -m wsframed.bridge, the CLI) are measured
    # too: coverage's .pth hook starts in any process that sees this variable, and
    # the rcfile names the test running as the process's static context.
    if os.path.exists(".mutation-subprocess-rc"):
        os.environ["COVERAGE_PROCESS_START"] = os.path.abspath(".mutation-subprocess-rc")

def pytest_runtest_setup(item):
    current = coverage.Coverage.current()
    if current is not None:
        current.switch_context(item.nodeid)
    os.environ["WSFRAMED_MUTATION_CONTEXT"] = item.nodeid
    ORDER.append(item.nodeid)

def pytest_runtest_logreport(report):
    SECONDS[report.nodeid] = SECONDS.get(report.nodeid, 0.0) + report.duration

def pytest_unconfigure(config):
    with open(".mutation-order", "w") as out:
        out.write("\\n".join(f"{n}\\t{SECONDS.get(n, 0.0):.3f}" for n in ORDER))
"""


def tests_by_line(
    tree: Path, module: str, tests: list[str]
) -> tuple[dict[int, list[str]], float, dict[str, float]]:
    """Run the tests once under coverage: each line of ``module`` -> the node ids of the
    tests that execute it (a line run only at import maps to ``[]``: run every test),
    the run's seconds, and each test's seconds (under coverage: an upper bound)."""
    import coverage  # the test suite's dependency

    (tree / "_mutation_contexts.py").write_text(CONTEXT_PLUGIN)
    (tree / ".mutation-coveragerc").write_text("[run]\nbranch = false\n")
    data_file = tree / ".mutation-coverage"
    # A program a test starts writes its own data file, its context the test's node id
    # (coverage expands the variable when the program starts).
    (tree / ".mutation-subprocess-rc").write_text(
        "[run]\nbranch = false\nparallel = true\nsigterm = true\n"
        f"data_file = {tree / '.mutation-subprocess'}\ninclude = {tree / module}\n"
        "context = ${WSFRAMED_MUTATION_CONTEXT}\n"
    )
    command = [
        sys.executable, "-m", "coverage", "run", "--rcfile=.mutation-coveragerc",
        f"--data-file={data_file}", f"--include={module}", "-m", "pytest", "-q",
        "-p", "no:cacheprovider", "-p", "_mutation_contexts", *tests,
    ]
    env = {**test_environment(tree)}
    started = time.monotonic()
    run = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if run.returncode != 0:
        sys.exit(f"{module}: the tests fail without any mutant:\n{run.stdout[-3000:]}")
    ran = [line.split("\t") for line in (tree / ".mutation-order").read_text().split("\n")]
    order = {nodeid: i for i, (nodeid, _) in enumerate(ran)}
    seconds = {nodeid: float(taken) for nodeid, taken in ran}
    by_line: dict[int, set[str]] = {}
    at_import: set[int] = set()  # lines pytest's process ran outside any test
    for path in [data_file, *sorted(tree.glob(".mutation-subprocess.*"))]:
        data = coverage.CoverageData(basename=str(path))
        data.read()
        for filename in data.measured_files():
            if Path(filename).resolve() == (tree / module).resolve():
                for line, contexts in data.contexts_by_lineno(filename).items():
                    ids = {c for c in contexts if c in order}
                    if path == data_file and not ids:
                        at_import.add(line)
                    by_line.setdefault(line, set()).update(ids)
    found = {
        line: [] if line in at_import else sorted(ids, key=order.__getitem__)
        for line, ids in by_line.items()
    }
    return found, elapsed, seconds


def test_environment(tree: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "default"),
    }
    env.pop("COVERAGE_PROCESS_START", None)
    env.pop("COVERAGE_FILE", None)
    return env


def uses_hypothesis(tree: Path, tests: list[str]) -> bool:
    files = {test.partition("::")[0] for test in tests}
    return any("hypothesis" in (tree / name).read_text(encoding="utf-8") for name in files)


def precompile(tree: Path, module: str) -> None:
    """Bytecode for every module of the copy but the mutated one (it is compiled from
    source each run: a mutant of the same size and second would match a stale .pyc)."""
    import py_compile

    for source in (tree / "wsframed").rglob("*.py"):
        if source != tree / module:
            py_compile.compile(str(source), doraise=True)


def run_tests(tree: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    env = test_environment(tree)
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    if not uses_hypothesis(tree, tests):
        command += ["-p", "no:hypothesispytest"]  # a second less per run
    command += tests
    started = time.monotonic()
    try:
        run = subprocess.run(
            command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - started
    return ("survived" if run.returncode == 0 else "killed"), time.monotonic() - started


def mutate(module: str, tests: list[str], lines: range | None, listing: bool,
           factor: float, retry: set[tuple[str, int, int, str]] | None = None,
           functions: set[str] | None = None, error_paths: bool = False,
           per_mutant: float | None = None, select: bool = True) -> list[Mutant]:
    source = (ROOT / module).read_text(encoding="utf-8")
    mutants = mutants_of(module, source, lines, functions, error_paths)
    if retry is not None:
        mutants = [m for m in mutants if (m.module, m.start, m.end, m.replacement) in retry]
    if listing:
        for mutant in mutants:
            print(mutant.describe())
        return mutants
    with tempfile.TemporaryDirectory(prefix="wsframed-mutation-") as directory:
        tree = Path(directory)
        copy_tree(tree)
        precompile(tree, module)
        target = tree / module
        seconds: dict[str, float] = {}
        if select:
            covering, clean, seconds = tests_by_line(tree, module, tests)
        else:
            status, clean = run_tests(tree, tests, timeout=600)
            if status != "survived":
                sys.exit(f"{module}: the tests fail without any mutant ({status}); fix that first")
        print(f"{module}: {len(mutants)} mutants; clean run {clean:.1f} s over {tests}",
              flush=True)
        try:
            for number, mutant in enumerate(mutants, 1):
                chosen = tests
                if select:
                    if mutant.runs_at not in covering:  # no test executes this line
                        mutant.status = "uncovered"
                        print(f"  [{number}/{len(mutants)}] UNCOVERED {mutant.describe()}",
                              flush=True)
                        continue
                    chosen = covering[mutant.runs_at] or tests
                target.write_text(
                    source[: mutant.start] + mutant.replacement + source[mutant.end :],
                    encoding="utf-8",
                )
                limit = factor * clean + 10
                if chosen is not tests:  # the selected tests' own time, never less than -x
                    limit = factor * sum(seconds.get(t, 0.0) for t in chosen) + 15
                    limit = max(limit, per_mutant or 0.0)
                elif per_mutant is not None:
                    limit = max(per_mutant, factor * clean + 10)
                mutant.status, mutant.seconds = run_tests(tree, chosen, limit)
                if mutant.status == "survived":
                    print(f"  [{number}/{len(mutants)}] SURVIVED {mutant.describe()}", flush=True)
                elif number % 25 == 0:
                    print(f"  [{number}/{len(mutants)}] ...", flush=True)
        finally:
            target.write_text(source, encoding="utf-8")
    return mutants


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module paths, as in MODULE_TESTS")
    parser.add_argument("--all", action="store_true", help="every module of MODULE_TESTS")
    parser.add_argument("--tests", nargs="+", help="test files to run instead of the map's")
    parser.add_argument("--lines", help="only lines FIRST-LAST of the module")
    parser.add_argument(
        "--functions", help="only these functions/methods/classes (comma-separated names)"
    )
    parser.add_argument(
        "--error-paths", action="store_true",
        help="only error, close and limit paths (except/finally/raise, ...)",
    )
    parser.add_argument(
        "--no-select", action="store_true",
        help="run every mapped test file for each mutant (default: only the tests that "
        "execute the mutated line, found by one run under coverage)",
    )
    parser.add_argument(
        "-x", "--per-mutant-timeout", type=float,
        help="the least time one mutant's run is allowed, in seconds (default: "
        "--timeout-factor times its tests' clean time, plus 15 s); a longer run counts "
        "as killed",
    )
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
            if m["status"] in ("survived", "uncovered")
        }
    results: list[Mutant] = []
    for module in modules:
        tests = args.tests or MODULE_TESTS.get(module)
        if not tests:
            parser.error(f"{module}: not in MODULE_TESTS; pass --tests")
        tests = [t for t in tests if (ROOT / t).exists() or args.list]  # files not written yet
        functions = set(args.functions.split(",")) if args.functions else None
        started = time.monotonic()
        results += mutate(
            module, tests, lines, args.list, args.timeout_factor, retry,
            functions, args.error_paths, args.per_mutant_timeout, not args.no_select,
        )
        if not args.list:
            print(f"{module}: {time.monotonic() - started:.0f} s", flush=True)
    if args.list:
        return 0
    print("\nmodule                          mutants  killed  timeout  survived  score")
    for module in modules:
        mine = [m for m in results if m.module == module]
        killed = sum(m.status == "killed" for m in mine)
        timeout = sum(m.status == "timeout" for m in mine)
        survived = [m for m in mine if m.status in ("survived", "uncovered")]
        score = 100 * (killed + timeout) / len(mine) if mine else 100.0
        print(f"{module:32}{len(mine):7}{killed:8}{timeout:9}{len(survived):10}{score:6.1f}%")
    if args.json:
        args.json.write_text(json.dumps([asdict(m) for m in results], indent=1))
    return 1 if any(m.status in ("survived", "uncovered") for m in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
