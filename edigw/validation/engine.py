"""The validation engine: compiled rule sets, run on one thread that owns Saxon.

Why one thread. SaxonC is Saxon compiled to native code with GraalVM; its runtime (an
"isolate") is bound to the threads that enter it. SaxonC 13.0 has been reported to abort
the whole process ("Failed to enter the specified IsolateThread context") when called
from threads or forked workers other than the one that initialised it (Odoo, uWSGI), and
a ``PyXsltExecutable`` is documented as not thread-safe (one clone per thread). Rather
than depend on how a given release handles that, every call into Saxon and lxml's schema
validation happens on one daemon thread this object owns: callers from any thread hand it
the bytes and wait. Saxon releases the GIL while it transforms (measured: another Python
thread keeps running during a transform), so waiting here does not slow other flows'
pollers; and since the work is serialised, validation never takes more than one core
away from them.

One engine per process (:func:`shared_validator`): one ``PySaxonProcessor`` for the life
of the process (it is never released: SaxonC tears its isolate down at exit), each
artefact compiled once, on first use or by :meth:`Validator.warm_up`.
"""

from __future__ import annotations

import functools
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from lxml import etree

from edigw.errors import ConfigError, DataProblem, MalformedFileError, SourceDataError
from edigw.model import Location
from edigw.validation.artefacts import (
    Artefact,
    Layer,
    Profile,
    RuleSet,
    Syntax,
    UnsupportedDocument,
    rule_set,
)
from edigw.validation.findings import Finding, Severity, svrl_findings, xsd_findings
from edigw.validation.policy import DEFAULT_POLICY, LayerMode, ValidationPolicy
from edigw.validation.report import LayerResult, LayerStatus, ValidationReport

DEFAULT_TIMEOUT = 120.0  # seconds one file may take through every layer
_T = TypeVar("_T")
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
}


class Validator:
    """Validates e-invoice XML in named layers; safe to call from any thread."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Touched only on the validation thread:
        self._saxon: Any = None
        self._xslt: Any = None
        self._schemas: dict[str, Any] = {}
        self._stylesheets: dict[str, Any] = {}

    # -- public -------------------------------------------------------------------------

    def validate(
        self,
        xml: bytes,
        *,
        syntax: Syntax | str,
        profile: Profile | str,
        policy: ValidationPolicy = DEFAULT_POLICY,
        source_name: str = "invoice.xml",
    ) -> ValidationReport:
        """Run the layers of ``policy`` on ``xml``; the report says what blocks the file.

        Raises SourceDataError when no rule set exists for ``syntax``/``profile``, and
        MalformedFileError when ``xml`` is not well-formed or declares a DOCTYPE.
        """
        try:
            rules = rule_set(syntax, profile)
        except UnsupportedDocument as exc:
            problem = DataProblem(f"cannot validate this invoice: {exc}", Location(source_name))
            raise SourceDataError(problem) from exc
        future = self._submit(lambda: self._run(xml, rules, policy, source_name))
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            future.cancel()  # still queued behind a long one: it will not run
            msg = (
                f"validation did not finish within {self.timeout:g} s: the file is too "
                "large or too complex for the rules. The validation thread goes on with it "
                "and the files after it wait their turn; split the invoice or raise the limit"
            )
            raise SourceDataError(DataProblem(msg, Location(source_name))) from None

    def warm_up(self, rule_sets: Iterable[RuleSet]) -> float:
        """Compile the artefacts of ``rule_sets`` now (seconds taken), not on the first file."""

        def compile_all() -> float:
            start = time.perf_counter()
            for rules in rule_sets:
                for artefact in rules.artefacts():
                    self._compiled(artefact)
            return time.perf_counter() - start

        return self._submit(compile_all).result()

    # -- the validation thread ----------------------------------------------------------

    def _submit(self, job: Callable[[], _T]) -> Future[_T]:
        future: Future[_T] = Future()
        self._ensure_thread()
        self._jobs.put((job, future))
        return future

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="edigw-validation", daemon=True
                )
                self._thread.start()

    def _serve(self) -> None:
        while True:
            job, future = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:
                future.set_exception(exc)

    def _compiled(self, artefact: Artefact) -> Any:
        """The compiled XMLSchema or XSLT executable of ``artefact``, compiled once."""
        cache = self._schemas if artefact.kind == "xsd" else self._stylesheets
        compiled = cache.get(artefact.path)
        if compiled is None:
            compiled = cache[artefact.path] = self._compile(artefact)
        return compiled

    def _compile(self, artefact: Artefact) -> Any:
        path = artefact.file()
        try:
            if artefact.kind == "xsd":
                parser = etree.XMLParser(no_network=True, resolve_entities=False)
                return etree.XMLSchema(etree.parse(str(path), parser))
            return self._xslt_processor().compile_stylesheet(stylesheet_file=str(path))
        except Exception as exc:  # lxml and Saxon errors alike: the install is broken
            msg = f"validation rules {artefact.name} ({path}) cannot be compiled: {exc}"
            raise ConfigError(msg) from exc

    def _xslt_processor(self) -> Any:
        if self._xslt is None:
            # ~100 MB of native code: loaded when a rule set is first compiled, not on import
            from saxonche import PySaxonProcessor

            self._saxon = PySaxonProcessor(license=False)
            self._xslt = self._saxon.new_xslt30_processor()
        return self._xslt

    def _saxon_parse(self, text: str, source_name: str) -> Any:
        try:
            return self._saxon.parse_xml(xml_text=text, encoding="utf-8")
        except Exception as exc:  # lxml read it, so this is rare: say what Saxon said
            message = " ".join(str(exc).split())
            problem = DataProblem(
                f"the rules engine cannot read the XML: {message}", Location(source_name)
            )
            raise MalformedFileError(problem) from exc

    def _run(
        self, xml: bytes, rules: RuleSet, policy: ValidationPolicy, source_name: str
    ) -> ValidationReport:
        started = time.perf_counter()
        doc = _parse(xml, source_name)
        results: list[LayerResult] = []
        findings: list[Finding] = []
        xsd_blocks = False
        saxon_doc: Any = None
        timings = {"parse": time.perf_counter() - started}
        for layer in Layer:
            artefact = rules.artefact(layer)
            mode = policy.mode(layer)
            if artefact is None:
                results.append(LayerResult(layer, mode, None, LayerStatus.NOT_APPLICABLE))
                continue
            if mode is LayerMode.OFF:
                results.append(LayerResult(layer, mode, artefact, LayerStatus.OFF))
                continue
            if xsd_blocks:
                reason = "not run: the file is not valid against its XML Schema"
                results.append(
                    LayerResult(layer, mode, artefact, LayerStatus.SKIPPED, reason=reason)
                )
                continue
            compiled = self._compiled(artefact)
            if layer is not Layer.XSD and saxon_doc is None:
                start = time.perf_counter()
                saxon_doc = self._saxon_parse(_saxon_text(xml, doc, source_name), source_name)
                timings["parse"] += time.perf_counter() - start
            start = time.perf_counter()
            if layer is Layer.XSD:
                found = _check_schema(compiled, doc, source_name)
                xsd_blocks = mode is LayerMode.BLOCK and any(f.severity.is_error for f in found)
            else:
                found = _check_rules(compiled, saxon_doc, doc, layer, artefact, source_name)
            seconds = time.perf_counter() - start
            timings[layer.value] = seconds
            findings.extend(found)
            results.append(LayerResult.of(layer, mode, artefact, found, seconds))
        blocking: list[Finding] = []
        warnings: list[Finding] = []
        for finding in findings:
            blocks = finding.severity.is_error and policy.mode(finding.layer) is LayerMode.BLOCK
            (blocking if blocks else warnings).append(finding)
        return ValidationReport(
            source_name=source_name,
            syntax=rules.syntax,
            profile=rules.profile,
            blocking=tuple(blocking),
            warnings=tuple(warnings),
            layers=tuple(results),
            timings=timings,
            seconds=time.perf_counter() - started,
        )


def _parse(xml: bytes, source_name: str) -> Any:
    """The lxml tree (for the XSD and for lines): no DTD, no entities."""
    try:
        doc = etree.fromstring(xml, etree.XMLParser(**_PARSER_OPTIONS))
    except etree.XMLSyntaxError as exc:
        problem = DataProblem(
            f"malformed XML: {exc.msg or exc}", Location(source_name, line=exc.lineno)
        )
        raise MalformedFileError(problem) from exc
    if doc.getroottree().docinfo.doctype:
        msg = (
            "the XML declares a DOCTYPE; e-invoices have none and edigw refuses DTDs "
            "(entity expansion, external files). Ask the sender for the file without it"
        )
        raise MalformedFileError(DataProblem(msg, Location(source_name, line=1)))
    return doc


def _saxon_text(xml: bytes, doc: Any, source_name: str) -> str:
    """The text Saxon parses: decoded with the encoding the XML declares, the declaration
    dropped so that it cannot contradict the UTF-8 Saxon is given."""
    encoding = doc.getroottree().docinfo.encoding or "utf-8"
    try:
        text = xml.decode(encoding).lstrip("\ufeff")
    except (LookupError, UnicodeDecodeError) as exc:
        problem = DataProblem(f"cannot decode the XML as {encoding}: {exc}", Location(source_name))
        raise MalformedFileError(problem) from exc
    return _DECLARATION.sub("", text, count=1)


def _check_schema(schema: Any, doc: Any, source_name: str) -> list[Finding]:
    if schema.validate(doc):
        return []
    return xsd_findings(schema.error_log, doc=doc, file=source_name)


def _check_rules(
    executable: Any, saxon_doc: Any, doc: Any, layer: Layer, artefact: Artefact, file: str
) -> list[Finding]:
    try:
        svrl = executable.transform_to_string(xdm_node=saxon_doc)
    except Exception as exc:  # a dynamic error stops the whole rule set: say so, never pass
        message = " ".join(str(exc).split())
        return [
            Finding(
                layer=layer,
                rule=artefact.name,
                severity=Severity.FATAL,
                message=f"the rules could not be evaluated on this document: {message}",
                file=file,
            )
        ]
    if "failed-assert" not in svrl and "successful-report" not in svrl:
        return []  # the common case, a clean invoice: no need to parse the SVRL
    return svrl_findings(
        svrl.encode("utf-8"), layer=layer, fallback_rule=artefact.name, doc=doc, file=file
    )


@functools.cache
def shared_validator() -> Validator:
    """The process's engine: Saxon's runtime is per process, so is its compiled rules' cache."""
    return Validator()


def validate(
    xml: bytes,
    *,
    syntax: Syntax | str,
    profile: Profile | str,
    policy: ValidationPolicy = DEFAULT_POLICY,
    source_name: str = "invoice.xml",
) -> ValidationReport:
    """:meth:`Validator.validate` on the process's shared engine."""
    return shared_validator().validate(
        xml, syntax=syntax, profile=profile, policy=policy, source_name=source_name
    )
