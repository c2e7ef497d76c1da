"""What the exercise checks must reject: AST mutants of each reference solution, and mistakes learners make.

``mutants(exercise)`` derives wrong variants from the reference's source, one small edit each (a flipped
comparison, a bound or constant off by one, a dropped ``kind="stable"`` or keyword, another dtype, swapped
arguments or axes, a deleted statement, a dropped ``return``, ...). Each is named by the line it changes; the
lesson's mistake module lists the ones that are equivalent to the reference, with the reason. ``@mistake``
registers a hand-written wrong answer (written as a learner would) with the hint it must get.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import linecache
import signal
import textwrap
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sessrec_course.exercises.core import Exercise

MISTAKES: dict[str, list[tuple[Callable, str | None]]] = {}  # exercise id -> [(wrong answer, hint fragment)]


def mistake(exercise_id: str, hint: str | None = None) -> Callable[[Callable], Callable]:
    """Register a learner's wrong answer; ``hint``: a fragment of the diagnosis it must get (None: the catch-all)."""
    def register(fn: Callable) -> Callable:
        MISTAKES.setdefault(exercise_id, []).append((fn, hint))
        return fn
    return register


def exercises(module: str) -> dict[str, Exercise]:
    """``{"module.qN": exercise}`` of one exercise module, in order."""
    mod = importlib.import_module(f"sessrec_course.exercises.{module}")
    found = {f"{module}.{name}": value for name, value in vars(mod).items() if isinstance(value, Exercise)}
    return dict(sorted(found.items(), key=lambda item: int(item[0].rpartition(".q")[2])))


# ---- mutation operators: each maps a node to its replacements (None deletes a statement) ---------------------------
COMPARE = {ast.Gt: [ast.GtE, ast.Lt], ast.GtE: [ast.Gt, ast.LtE], ast.Lt: [ast.LtE, ast.Gt],
           ast.LtE: [ast.Lt, ast.GtE], ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.Is: [ast.IsNot],
           ast.IsNot: [ast.Is], ast.In: [ast.NotIn], ast.NotIn: [ast.In]}
BINARY = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
          ast.Mod: ast.FloorDiv, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.Pow: ast.Mult,
          ast.MatMult: ast.Mult}
SYMMETRIC = {"max", "min", "maximum", "minimum", "equal", "not_equal", "logical_and", "logical_or", "add", "multiply"}
NOT_COMMUTATIVE = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult)
SIBLINGS = {"min": "max", "max": "min", "minimum": "maximum", "maximum": "minimum", "any": "all", "all": "any",
            "tril": "triu", "triu": "tril", "sum": "mean", "mean": "sum", "zeros": "ones", "ones": "zeros",
            "zeros_like": "ones_like", "ones_like": "zeros_like", "argmax": "argmin", "argmin": "argmax",
            "sigmoid": "tanh", "tanh": "sigmoid", "logical_and": "logical_or", "logical_or": "logical_and",
            "isna": "notna", "notna": "isna", "int64": "int32", "int32": "int64", "float64": "float32",
            "float32": "float64", "float": "int", "int": "float", "INT64": "INT32", "head": "tail", "tail": "head",
            "first": "last", "last": "first", "not_equal": "equal", "equal": "not_equal", "greater": "less",
            "less": "greater", "cumsum": "cumprod"}


def _constant(node: ast.Constant) -> list[ast.AST]:
    value = node.value
    if isinstance(value, bool):
        return [ast.Constant(not value)]
    if isinstance(value, int | float):
        return [ast.Constant(value + 1), ast.Constant(value - 1)]
    if isinstance(value, str) and value in SIBLINGS:
        return [ast.Constant(SIBLINGS[value])]
    return []


def _shifted(expr: ast.expr) -> list[ast.AST]:
    return [ast.BinOp(copy.deepcopy(expr), op(), ast.Constant(1)) for op in (ast.Add, ast.Sub)]


def replacements(node: ast.AST, docstring: ast.AST | None) -> Iterator[tuple[str, ast.AST | None]]:
    """Every single-edit replacement of ``node``, with the operator's name."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for new in COMPARE.get(type(op), []):
                yield "compare", ast.Compare(node.left, [*node.ops[:i], new(), *node.ops[i + 1:]], node.comparators)
    elif isinstance(node, ast.BinOp):
        if type(node.op) in BINARY:
            yield "operator", ast.BinOp(node.left, BINARY[type(node.op)](), node.right)
        if isinstance(node.op, NOT_COMMUTATIVE):
            yield "swap operands", ast.BinOp(node.right, node.op, node.left)
    elif isinstance(node, ast.AugAssign) and type(node.op) in BINARY:
        yield "operator", ast.AugAssign(node.target, BINARY[type(node.op)](), node.value)
    elif isinstance(node, ast.BoolOp):
        yield "boolean", ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values)
    elif isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.UAdd):
        yield "drop unary", node.operand
    elif isinstance(node, ast.Constant):
        for new in _constant(node):
            yield "constant", new
    elif isinstance(node, ast.Slice):
        for part in ("lower", "upper"):
            bound = getattr(node, part)
            if bound is not None and not isinstance(bound, ast.Constant):
                for new in _shifted(bound):
                    yield "slice bound", ast.Slice(**{**{f: getattr(node, f) for f in node._fields}, part: new})
    elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) > 1:
        elts = node.slice.elts
        for i in range(len(elts) - 1):
            swapped = [*elts[:i], elts[i + 1], elts[i], *elts[i + 2:]]
            if ast.dump(elts[i]) != ast.dump(elts[i + 1]):
                yield "swap axes", ast.Subscript(node.value, ast.Tuple(swapped, ast.Load()), node.ctx)
    elif isinstance(node, ast.Call):
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if name in ("range", "arange") and node.args and not isinstance(node.args[-1], ast.Constant):
            for new in _shifted(node.args[-1]):
                yield "range bound", ast.Call(node.func, [*node.args[:-1], new], node.keywords)
        for i in range(len(node.keywords)):
            yield "drop keyword", ast.Call(node.func, node.args, [*node.keywords[:i], *node.keywords[i + 1:]])
        if len(node.args) >= 2 and ast.dump(node.args[0]) != ast.dump(node.args[1]) and name not in SYMMETRIC:
            yield "swap arguments", ast.Call(node.func, [node.args[1], node.args[0], *node.args[2:]], node.keywords)
    elif isinstance(node, ast.Attribute) and node.attr in SIBLINGS:
        yield "sibling", ast.Attribute(node.value, SIBLINGS[node.attr], node.ctx)
    elif isinstance(node, ast.Name) and node.id in SIBLINGS and isinstance(node.ctx, ast.Load):
        yield "sibling", ast.Name(SIBLINGS[node.id], node.ctx)
    if isinstance(node, ast.Return) and node.value is not None:
        yield "drop return", ast.Expr(node.value)
    elif isinstance(node, ast.stmt) and not isinstance(node, ast.FunctionDef) and node is not docstring:
        yield "delete statement", None


class _Swap(ast.NodeTransformer):
    def __init__(self, target: ast.AST, new: ast.AST | None) -> None:
        self.target, self.new = target, new

    def visit(self, node: ast.AST) -> ast.AST | None:
        if node is self.target:
            return self.new
        node = self.generic_visit(node)
        if isinstance(getattr(node, "body", None), list) and not node.body:  # a deleted only statement
            node.body = [ast.Pass()]
        return node


@dataclass
class Mutant:
    """One wrong variant: the operator, the line it changes (its name), and the function."""

    operator: str
    line: str
    fn: Callable


def mutants(exercise: Exercise) -> list[Mutant]:
    """The distinct single-edit mutants of ``exercise``'s reference that compile, named by their changed line."""
    source = textwrap.dedent(inspect.getsource(exercise.reference))
    tree = ast.parse(source)
    original = ast.unparse(tree).splitlines()
    module = inspect.getmodule(exercise.reference)
    local = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
             if isinstance(node, ast.Import | ast.ImportFrom) for alias in node.names}  # the reference imports them
    seen, found = {ast.unparse(tree)}, []
    for index, node in enumerate(ast.walk(tree)):
        fn_def = tree.body[0]
        docstring = fn_def.body[0] if ast.get_docstring(fn_def) else None
        for operator, new in replacements(node, docstring):
            mutated = copy.deepcopy(tree)
            target = list(ast.walk(mutated))[index]
            mutated = ast.fix_missing_locations(_Swap(target, copy.deepcopy(new)).visit(mutated))
            try:
                text = ast.unparse(mutated)
                code = compile(text, f"<mutant {len(found)} of {exercise.function_name}>", "exec")
            except (SyntaxError, ValueError, TypeError):
                continue
            if text in seen:
                continue
            seen.add(text)
            lines = text.splitlines()
            changed = [line.strip() for line in lines if line not in original]
            name = changed[0] if changed else "deleted: " + next(
                line.strip() for line in original if line not in lines)
            namespace = {k: v for k, v in vars(module).items() if k not in local}  # as in the learner's cell
            exec(code, namespace)
            filename = code.co_filename
            linecache.cache[filename] = (len(text), None, [line + "\n" for line in lines], filename)
            found.append(Mutant(operator, name, namespace[exercise.function_name]))
    return found


class _Timeout(Exception):
    pass


def killed(exercise: Exercise, fn: Callable, seconds: int = 30) -> bool:
    """Whether ``exercise``'s check rejects ``fn`` (a mutant running past ``seconds`` counts as rejected)."""
    def stop(*_):
        raise _Timeout(f"ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        with warnings.catch_warnings():  # a mutant may divide by zero: that is its business
            warnings.simplefilter("ignore")
            return not exercise.evaluate(fn).passed
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)



def solution_code(exercise: Exercise) -> list[str]:
    """The reference's statements and their right-hand sides, without spaces, for "no hint gives code"."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(exercise.reference))).body[0]
    parts = [node for node in ast.walk(tree) if isinstance(node, ast.stmt) and not isinstance(node, ast.FunctionDef)]
    parts += [node.value for node in parts if isinstance(getattr(node, "value", None), ast.expr)]
    code = ["".join(ast.unparse(node).replace('"', "'").split()) for node in parts]
    return [text for text in code if len(text) >= 16 and not text.startswith(("'", '"'))]


def gives_code(text: str, code: list[str]) -> str | None:
    """The first piece of ``code`` that ``text`` spells out, if any."""
    flat = "".join(text.replace('"', "'").replace("`", "").split())
    return next((piece for piece in code if piece in flat), None)


def load(module: str) -> tuple[dict[str, Exercise], dict[str, dict[str, str]]]:
    """A lesson's exercises, and its mutants equivalent to the references (from ``exercise_mistakes.<module>``)."""
    mistakes = importlib.import_module(f"exercise_mistakes.{module}")
    return exercises(module), getattr(mistakes, "EQUIVALENT", {})


@dataclass
class Kills:
    """The harness's count for one exercise."""

    exercise: str
    variants: int
    equivalent: int
    killed: int
    survivors: list[str]
    mistakes: int
    caught: int

    @property
    def rate(self) -> float:
        return self.killed / max(self.variants - self.equivalent, 1)

    def line(self) -> str:
        return (f"{self.exercise:<22} variants {self.variants:3d}  equivalent {self.equivalent:2d}  killed "
                f"{self.killed:3d} ({self.rate:6.1%})  hand-written mistakes caught {self.caught}/{self.mistakes}")



ROWS: dict[str, Kills] = {}


def check_mutants(eid: str, exercise: Exercise, equivalent: dict[str, str]) -> None:
    """Every listed equivalent mutant exists and passes; the check kills >= 95 % of the others."""
    found = mutants(exercise)
    survivors = [m.line for m in found if not killed(exercise, m.fn)]
    names = {m.line for m in found}
    assert not set(equivalent) - names, f"{eid}: listed as equivalent but never generated: {set(equivalent) - names}"
    assert all(why.strip() for why in equivalent.values()), f"{eid}: every equivalent mutant needs its reason"
    wrongly = [line for line in equivalent if line not in survivors]
    assert not wrongly, f"{eid}: listed as equivalent, but the check rejects them (remove them): {wrongly}"
    unexplained = [line for line in survivors if line not in equivalent]
    row = ROWS.setdefault(eid, Kills(eid, 0, 0, 0, [], 0, 0))
    row.variants, row.equivalent, row.killed, row.survivors = (len(found), len(equivalent),
                                                               len(found) - len(survivors), unexplained)
    assert row.rate >= 0.95, f"{eid}: {row.line()}; survivors: {unexplained}"


def check_mistakes(eid: str, exercise: Exercise) -> None:
    """Each hand-written mistake fails, with its own diagnosis and no other; every diagnosis is someone's."""
    registered = MISTAKES.get(eid, [])
    assert len(registered) >= 3, f"{eid}: at least 3 hand-written mistakes, found {len(registered)}"
    fired, caught, problems = set(), 0, []
    for fn, fragment in registered:
        outcome = exercise.evaluate(fn)
        named = [hint for hint in exercise.mistakes if hint in outcome.message]
        own = [hint for hint in exercise.mistakes if fragment and fragment in hint]
        caught += not outcome.passed
        fired.update(named)
        if outcome.passed or (fragment and fragment not in outcome.message) or named != own[:1] or len(own) > 1:
            problems.append(f"{fn.__name__}: {outcome.message}")
    row = ROWS.setdefault(eid, Kills(eid, 0, 0, 0, [], 0, 0))
    row.mistakes, row.caught = len(registered), caught
    assert not problems, f"{eid}: " + "\n".join(problems)
    assert fired == set(exercise.mistakes), f"{eid}: diagnoses no mistake triggers: {set(exercise.mistakes) - fired}"


def check_never_raises(exercise: Exercise) -> None:
    """The reference passes, a stub is "not yet"; forgetting ``return`` or raising gets a message, no exception."""
    def stub(*args, **kwargs):
        raise NotImplementedError  # your code here

    assert exercise.evaluate(exercise.reference).passed, exercise.evaluate(exercise.reference).message
    assert exercise.evaluate(stub).message.startswith("not yet"), exercise.evaluate(stub).message

    def forgot_return(*args, **kwargs):
        _ = args

    def raises(*args, **kwargs):
        table = {"user": args}
        return table["session"]

    message = exercise.evaluate(forgot_return).message
    assert "returned None: did you forget `return`?" in message, message
    message = exercise.evaluate(raises).message
    assert "raised KeyError: 'session'" in message and '`return table["session"]`' in message, message


def check_hints_give_no_code(exercise: Exercise) -> None:
    """Hints, case hints and diagnoses nudge; only ``solution()`` shows the reference's code."""
    code = solution_code(exercise)
    for text in [*exercise.hints, *(case.hint for case in exercise.cases()), *exercise.mistakes]:
        piece = gives_code(text, code)
        assert piece is None, f"{exercise.function_name}: a hint spells out the solution's `{piece}`: {text}"


class Summary:
    """A pytest plugin that prints the kill table at the end of the run."""

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not ROWS:
            return
        terminalreporter.section("exercise checks against wrong answers")
        for row in ROWS.values():
            terminalreporter.write_line(row.line())
        rows = list(ROWS.values())
        variants, equivalent, kills = (sum(getattr(r, f) for r in rows) for f in ("variants", "equivalent", "killed"))
        terminalreporter.write_line(
            f"summary: {len(rows)} exercises, {variants} variants, {equivalent} equivalent, {kills} killed "
            f"({kills / max(variants - equivalent, 1):.1%}), hand-written mistakes caught "
            f"{sum(r.caught for r in rows)}/{sum(r.mistakes for r in rows)}")
