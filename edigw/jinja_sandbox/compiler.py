"""How partner text is compiled: Jinja2's code generator with the sandbox's hooks.

The generated Python calls back into :class:`~edigw.jinja_sandbox.environment.BoundedEnvironment`
where Jinja2's own sandbox has no hook: every ``for`` loop (``bounded_iter``), ``~``
(``bounded_operands``), ``*``, ``**``, ``%`` and ``+`` (``bounded_mul``...), ``{{ ... }}``
(``output_text``), and the output of macros and blocks (``output_buffer``). Templates render
within a budget of their own (:class:`BoundedTemplate`), and what an ``{% import %}`` prints
is bounded like any string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from io import StringIO
from typing import TYPE_CHECKING, Any, cast

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Template, TemplateModule

from edigw.jinja_sandbox.budget import Budget, LimitExceeded

if TYPE_CHECKING:
    from edigw.jinja_sandbox.environment import BoundedEnvironment

ITERATE = "bounded_iter"
"""The environment method every ``for`` loop's iterable goes through."""


def _binop(
    method: str, operator: str | None = None, *, constants: bool = False
) -> Callable[[CodeGenerator, nodes.BinExpr, Frame], None]:
    """``a OP b`` compiled into ``environment.<method>(a, b)``: a direct call, cheaper than
    Jinja's ``call_binop(context, "OP", a, b)`` (the operator is still listed as intercepted,
    which keeps Jinja from computing ``'x' * 10**9`` while compiling).

    With ``operator``, ``a OP b`` stays plain Python when one side is a filter that always
    gives a ``Decimal`` (``x|dec * y``): a ``Decimal`` times or plus anything is a number
    bounded by its precision, or a TypeError. With ``constants`` too, when one side is a number
    written in the template: ``100 + x`` can only give a number (or a TypeError), never a longer
    string (not so for ``*``: ``'x' * 1000000000``).
    """

    def visitor(self: CodeGenerator, node: nodes.BinExpr, frame: Frame) -> None:
        decimals = cast("BoundedEnvironment", self.environment).decimal_filters
        if operator is not None and any(
            (constants and isinstance(side, nodes.Const) and type(side.value) in (int, float))
            or (isinstance(side, nodes.Filter) and side.name in decimals)
            for side in (node.left, node.right)
        ):
            self.write("(")
            self.visit(node.left, frame)
            self.write(f" {operator} ")
        else:
            self.write(f"environment.{method}(")
            self.visit(node.left, frame)
            self.write(", ")
        self.visit(node.right, frame)
        self.write(")")

    return visitor


class BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator with three hooks: loops, ``~`` and buffered output.

    Loops: :meth:`BoundedEnvironment._generate` turns ``for x in y`` into ``for x in
    <call bounded_iter>(y)``, with an ``EnvironmentAttribute`` node (which templates cannot
    write: only extensions make them), compiled here into a direct call.
    """

    visit_Add = _binop("bounded_add", "+", constants=True)
    visit_Mul = _binop("bounded_mul", "*")
    visit_Pow = _binop("bounded_pow")
    visit_Mod = _binop("bounded_mod")

    def visit_Call(
        self,
        node: nodes.Call,
        frame: Frame,
        forward_caller: bool = False,  # noqa: FBT001, FBT002
    ) -> None:
        if isinstance(node.node, nodes.EnvironmentAttribute) and node.node.name == ITERATE:
            self.write(f"environment.{ITERATE}(")
            self.visit(node.args[0], frame)
            self.write(")")
            return
        super().visit_Call(node, frame, forward_caller=forward_caller)

    def visit_Getattr(self, node: nodes.Getattr, frame: Frame) -> None:
        # ``rec.field`` on a plain variable, in an environment that reads dict keys first
        # (partner templates over Ecolix records): the key is read inline, and only what is
        # not a key of a plain dict goes through ``environment.getattr`` and its checks. The
        # variable is written twice, so only a bare name (no call, nothing to run twice).
        environment = cast("BoundedEnvironment", self.environment)
        if environment.dict_keys_first and isinstance(node.node, nodes.Name):
            ref = self._source_of(node.node, frame)
            if ref.isidentifier():
                key = repr(node.attr)
                self.write(
                    f"({ref}[{key}] if type({ref}) is dict and {key} in {ref} "
                    f"else environment.getattr({ref}, {key}))"
                )
                return
            self.write(f"environment.getattr({ref}, {node.attr!r})")
            return
        super().visit_Getattr(node, frame)

    def _source_of(self, node: nodes.Expr, frame: Frame) -> str:
        """The Python source the generator writes for ``node``, captured instead of written."""
        stream, self.stream = self.stream, StringIO()
        try:
            self.visit(node, frame)
            return self.stream.getvalue()
        finally:
            self.stream = stream

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
        # ``{{ row }}`` followed by a line break in a loop body: one chunk per line instead
        # of two (each chunk is a generator step and a turn of the render's write loop).
        # Only one expression with template text around it, unescaped: the chunk is at most
        # one bounded value plus text from the template's own source.
        parts = node.nodes
        values = [child for child in parts if not isinstance(child, nodes.TemplateData)]
        if (
            len(values) != 1
            or len(parts) == 1
            or frame.buffer is not None
            or frame.require_output_check
            or frame.eval_ctx.volatile
            or frame.eval_ctx.autoescape
        ):
            super().visit_Output(node, frame)
            return
        (value,) = values
        at = parts.index(value)
        before = "".join(str(cast("nodes.TemplateData", p).data) for p in parts[:at])
        after = "".join(str(cast("nodes.TemplateData", p).data) for p in parts[at + 1 :])
        finalize = self._make_finalize()
        self.writeline("yield ", value)
        if before:
            self.write(f"{before!r} + ")
        self._output_child_pre(value, frame, finalize)
        self.visit(value, frame)
        self._output_child_post(value, frame, finalize)
        if after:
            self.write(f" + {after!r}")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # As Jinja's own, with the operands checked before they are joined.
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"{func_name}(environment.bounded_operands((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")))")

    def _output_child_pre(
        self, node: nodes.Expr, frame: Frame, finalize: CodeGenerator._FinalizeInfo
    ) -> None:
        finalize = self._finalize_for(node, finalize)
        if finalize.src is not None and not (frame.eval_ctx.volatile or frame.eval_ctx.autoescape):
            self.write("environment.output_text(")  # str(finalize(x)) in one call
            return
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(
        self, node: nodes.Expr, frame: Frame, finalize: CodeGenerator._FinalizeInfo
    ) -> None:
        finalize = self._finalize_for(node, finalize)
        if finalize.src is not None and not (frame.eval_ctx.volatile or frame.eval_ctx.autoescape):
            self.write(")")
            return
        super()._output_child_post(node, frame, finalize)

    def _finalize_for(
        self, node: nodes.Expr, finalize: CodeGenerator._FinalizeInfo
    ) -> CodeGenerator._FinalizeInfo:
        # {{ x }} goes through environment.finalize (which sizes a container before it is
        # turned into text), except where x is text already: a filter that returns text or a
        # number, a ~ (sized by bounded_operands) or a constant. Saves a call per field.
        environment = cast("BoundedEnvironment", self.environment)
        if finalize.src is not None and (
            isinstance(node, nodes.Concat | nodes.Const | nodes.TemplateData)
            or (isinstance(node, nodes.Filter) and node.name in environment.text_filters)
        ):
            return self._FinalizeInfo(finalize.const, None)
        return finalize

    def buffer(self, frame: Frame) -> None:
        # Macros, {% set %}...{% endset %}, {% filter %} and call blocks collect their output
        # in a list that refuses to grow past the text limit.
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.output_buffer()")


class OutputBuffer(list[str]):
    """The output of a macro or block, bounded like any string a template builds."""

    __slots__ = ("_budget", "_left", "_limit")

    def __init__(self, limit: int, budget: Budget) -> None:
        super().__init__()
        self._limit = limit
        self._left = limit
        self._budget = budget

    def append(self, chunk: str) -> None:
        size = len(chunk)
        self._left -= size
        if self._left < 0:
            msg = f"the output of a macro or block is over the limit of {self._limit:,} characters"
            raise LimitExceeded(msg)
        self._budget.build(size)
        super().append(chunk)

    def extend(self, chunks: Iterable[str]) -> None:
        for chunk in chunks:
            self.append(chunk)


class BoundedTemplate(Template):
    """A template that renders within a budget of its own unless one is already running."""

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        env = cast("BoundedEnvironment", self.environment)
        if env.active_budget() is not None:
            return super().generate(*args, **kwargs)
        return self._generate_metered(env, *args, **kwargs)

    def _generate_metered(
        self, env: BoundedEnvironment, *args: Any, **kwargs: Any
    ) -> Iterator[str]:
        previous = env.begin(Budget(env.limits))
        try:
            yield from super().generate(*args, **kwargs)
        finally:
            env.end(previous)

    def render(self, *args: Any, **kwargs: Any) -> str:
        return "".join(self.generate(*args, **kwargs))

    def make_module(
        self,
        vars: dict[str, Any] | None = None,
        shared: bool = False,  # noqa: FBT001, FBT002 - Jinja's signature
        locals: Mapping[str, Any] | None = None,
    ) -> TemplateModule:
        # {% import %}: the imported template's own output is kept as a string, so it is
        # bounded like one.
        env = cast("BoundedEnvironment", self.environment)
        context = self.new_context(vars, shared, locals)
        body = env.output_buffer()
        body.extend(self.root_render_func(context))
        return TemplateModule(self, context, body)
