"""A bench's promises, checked against its own result line: each bench declares them as INVARIANTS, a list of
expressions over its figures (`"lost == 0"`, `"sent == events"`, `"interrupted_runs >= 1"`,
`"messages_per_s >= 0.9 * rate_limit"`). The bench checks them before it exits (exit 1 when one breaks), and
bench/smoke.py checks them again from the printed line, so a bench that forgot to check still fails CI.

Only comparisons, arithmetic, `and`/`or`/`not`, numbers and figure names are allowed: an invariant is data read with
`ast`, never code run with eval. A figure the line does not print breaks the invariant that names it, so renaming a
figure cannot turn a check into a silent pass.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping

COMPARISONS: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


class MissingFigure(Exception):
    """The invariant names a figure the result line does not print."""


def parse_figures(line: str) -> dict[str, str]:
    """`key=value key=value` → {key: value}."""
    return dict(pair.split("=", 1) for pair in line.split())


def broken(invariants: list[str], figures: Mapping[str, object]) -> list[str]:
    """The invariants that do not hold for these figures, each with the figures it reads."""
    found = []
    for invariant in invariants:
        tree = ast.parse(invariant, mode="eval")
        try:
            holds = bool(evaluate(tree.body, figures))
        except MissingFigure as missing:
            found.append(f"{invariant}  (no figure {missing})")
            continue
        if not holds:
            used = sorted({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)})
            found.append(f"{invariant}  ({' '.join(f'{name}={figures[name]}' for name in used)})")
    return found


def evaluate(node: ast.expr, figures: Mapping[str, object]) -> float | bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in figures:
            raise MissingFigure(node.id)
        return float(str(figures[node.id]))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not evaluate(node.operand, figures)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -evaluate(node.operand, figures)
    if isinstance(node, ast.BoolOp):
        values = [evaluate(value, figures) for value in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
        return ARITHMETIC[type(node.op)](evaluate(node.left, figures), evaluate(node.right, figures))
    if isinstance(node, ast.Compare):
        left = evaluate(node.left, figures)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = evaluate(right_node, figures)
            if type(op) not in COMPARISONS or not COMPARISONS[type(op)](left, right):
                return False
            left = right
        return True
    raise ValueError(f"not allowed in an invariant: {ast.unparse(node)}")
