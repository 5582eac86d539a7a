"""Reading an expression without running it: unknown names, the columns it reads, its result.

The expression is parsed by the very environment the engine compiles it with
(``edigw.mapping.expressions.make_environment``), so the functions, filters and tests known
here are the engine's own and cannot drift from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from edigw import suggest

NUMBER_FILTERS = frozenset({"int", "float", "round", "abs", "sum", "length", "count"})
TEXT_FILTERS = frozenset(
    {"string", "upper", "lower", "title", "capitalize", "trim", "replace", "format", "join",
     "truncate", "center", "striptags", "urlencode", "escape", "e", "indent", "wordwrap"}
)  # fmt: skip
_N = TypeVar("_N", bound=nodes.Node)


def parse_expression(env: ImmutableSandboxedEnvironment, text: str) -> nodes.Expr | None:
    """The expression's tree, parsed as the engine compiles it; None on a syntax error."""
    try:
        parser = Parser(env, text, state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            return None
    except TemplateSyntaxError:
        return None
    return tree


def expression_problems(
    env: ImmutableSandboxedEnvironment, tree: nodes.Expr, text: str, names: Sequence[str]
) -> list[str]:
    """Unknown functions, filters, tests and names in an expression."""
    problems: list[str] = []
    shown = f"in expression {text!r}"
    callees: set[int] = set()
    functions = sorted(n for n, v in env.globals.items() if callable(v))
    for call in _nodes(tree, nodes.Call):
        if isinstance(call.node, nodes.Name):
            callees.add(id(call.node))
            name = call.node.name
            if name not in env.globals and name not in names:
                problems.append(
                    suggest.unknown(
                        f"unknown function {name!r} {shown}", name, functions, noun="functions"
                    )
                )
    for found in _nodes(tree, nodes.Filter):
        if found.name not in env.filters:
            problems.append(
                suggest.unknown(
                    f"unknown filter {found.name!r} {shown}",
                    found.name,
                    sorted(env.filters),
                    noun="filters",
                )
            )
    for test in _nodes(tree, nodes.Test):
        if test.name not in env.tests:
            problems.append(
                suggest.unknown(
                    f"unknown test {test.name!r} {shown}",
                    test.name,
                    sorted(env.tests),
                    noun="tests",
                )
            )
    known = [*names, *sorted(n for n in env.globals if n not in functions)]
    for name_node in _nodes(tree, nodes.Name):
        if id(name_node) in callees or name_node.ctx != "load":
            continue
        if name_node.name not in names and name_node.name not in env.globals:
            problems.append(
                suggest.unknown(
                    f"unknown name {name_node.name!r} {shown}",
                    name_node.name,
                    known,
                    noun="names here",
                )
            )
    return problems


def _nodes(tree: nodes.Node, kind: type[_N]) -> list[_N]:
    """``tree`` itself and every node below it of ``kind`` (``find_all`` skips the root)."""
    found = [tree] if isinstance(tree, kind) else []
    return [*found, *tree.find_all(kind)]


def record_reads(tree: nodes.Node, name: str) -> list[tuple[str, bool]]:
    """Selectors read through ``record.X``, ``record['X']``, ``'X' in record`` (``record``)
    or ``records[i].X`` (``records``), each with whether the read is *guarded*: a fallback
    (``record.A or record.B``), a condition (``x if record.A else y``) or a presence test
    (``'A' in record``), where a value that is absent is expected."""

    def is_base(node: nodes.Node) -> bool:
        if name == "record":
            return isinstance(node, nodes.Name) and node.name == "record"
        return (
            isinstance(node, nodes.Getitem)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "records"
        )

    found: list[tuple[str, bool]] = []

    def walk(node: nodes.Node, *, guarded: bool) -> None:
        if isinstance(node, nodes.Getattr) and is_base(node.node):
            if not node.attr.startswith("_"):
                found.append((node.attr, guarded))
        elif isinstance(node, nodes.Getitem) and is_base(node.node):
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                found.append((node.arg.value, guarded))
        elif isinstance(node, nodes.Compare) and isinstance(node.expr, nodes.Const):
            for operand in node.ops:
                presence = operand.op in ("in", "notin") and is_base(operand.expr)
                if presence and isinstance(node.expr.value, str):
                    found.append((node.expr.value, True))
        if isinstance(node, nodes.Or):
            walk(node.left, guarded=True)
            walk(node.right, guarded=True)
            return
        if isinstance(node, nodes.CondExpr):
            walk(node.test, guarded=True)
            walk(node.expr1, guarded=guarded)
            if node.expr2 is not None:
                walk(node.expr2, guarded=guarded)
            return
        for child in node.iter_child_nodes():
            walk(child, guarded=guarded)

    walk(tree, guarded=False)
    return found


def result_kind(node: nodes.Node) -> str | None:
    """``number``, ``text`` or ``bool`` when the expression's result kind is plain to see."""
    if isinstance(node, nodes.Const):
        value = node.value
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, int | float):
            return "number"
        return "text" if isinstance(value, str) else None
    if isinstance(node, nodes.Filter):
        if node.name in NUMBER_FILTERS:
            return "number"
        return "text" if node.name in TEXT_FILTERS else None
    if isinstance(node, nodes.Compare | nodes.Not | nodes.Test):
        return "bool"
    if isinstance(node, nodes.Concat):
        return "text"
    if isinstance(node, nodes.Sub | nodes.Div | nodes.FloorDiv | nodes.Pow | nodes.Neg):
        return "number"
    if isinstance(node, nodes.Add | nodes.Mul | nodes.Mod):
        kinds = {result_kind(node.left), result_kind(node.right)}
        if isinstance(node, nodes.Mod):
            return "text" if result_kind(node.left) == "text" else None
        if "text" in kinds:
            return "text"
        return "number" if "number" in kinds else None
    if isinstance(node, nodes.CondExpr):
        one = result_kind(node.expr1)
        other = result_kind(node.expr2) if node.expr2 is not None else None
        return one if one == other else None
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
        return "number" if node.node.name.startswith("round") else None
    return None
