"""``edigw mapping``: mapping files checked, scaffolded from a sample and tried on samples,
offline or against Ecolix."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edigw.cli.shared import _echo_json, _load, _need_secrets, _one_line, config_option
from edigw.errors import EdigwError

if TYPE_CHECKING:
    from edigw.mapping.engine import CompiledMapping


@click.group("mapping")
def mapping_group() -> None:
    """Check mapping files and try them on samples, offline or against Ecolix (a dry run).

    Example: edigw mapping check mappings/
    """


@mapping_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--sample",
    type=click.Path(exists=True, path_type=Path),
    help="A sample file (or folder of them): check the columns or elements the mapping reads "
    "against it (CSV and Excel header, XML elements).",
)
def mapping_check_command(paths: tuple[Path, ...], sample: Path | None) -> None:
    """Validate mapping files and their lookup tables, reporting every problem with its line.

    Example: edigw mapping check mappings/ecommerce-orders-csv.yaml --sample orders.csv

    PATHS are mapping files or folders of them (default: ./mappings). Beyond the file's
    shape: unknown functions, filters and names in expressions, columns or fields the source
    does not have, fields and types Ecolix would refuse on every document.
    """
    from edigw.mapping.sample import check_mappings, mapping_files, sample_files

    paths = paths or (Path("mappings"),)
    samples = sample_files(sample) if sample is not None else []
    if samples and len(list(mapping_files(paths))) != 1:
        msg = "--sample checks one mapping: name one mapping file"
        raise click.ClickException(msg)
    results = check_mappings(paths, samples=samples)
    if not results:
        msg = "no mapping file (*.yaml) found"
        raise click.ClickException(msg)
    failed = 0
    for result in results:
        if result.problems:
            failed += 1
            click.echo(f"FAIL {result.path}")
            for problem in result.problems:
                click.echo(f"  {problem}")
        else:
            assert result.mapping is not None
            click.echo(f"ok   {result.path} -> {result.mapping.target}")
    if failed:
        msg = f"{failed} of {len(results)} mapping file(s) have problems"
        raise click.ClickException(msg)


@mapping_group.command("schema")
@click.option(
    "--layout",
    "layout",
    is_flag=True,
    help="Print the schema of flat-file layouts instead of mappings.",
)
def mapping_schema_command(*, layout: bool) -> None:
    """Print the JSON Schema of mapping files (or layouts), for editors' completion and checks.

    Example: edigw mapping schema > mappings/edigw-mapping.schema.json

    Then start each mapping with `# yaml-language-server: $schema=edigw-mapping.schema.json`
    (docs/mappings.md shows the VS Code and JetBrains set-up). `edigw init` writes both.
    """
    from edigw.mapping.editors import layout_schema_text, mapping_schema_text

    click.echo(layout_schema_text() if layout else mapping_schema_text(), nl=False)


@mapping_group.command("new")
@click.option(
    "--sample",
    "sample",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The partner's sample file (CSV, Excel, XML, e-invoice, or a flat file with --layout).",
)
@click.option(
    "--target",
    "target",
    required=True,
    help="The Ecolix write operation, e.g. orders.create.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the mapping here (default: print it).",
)
@click.option(
    "--layout",
    "layout",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The layout of a flat file (record types and fields).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
def mapping_new_command(
    sample: Path, target: str, out: Path | None, layout: Path | None, *, force: bool
) -> None:
    """Scaffold a commented mapping from a sample file and the target operation's schema.

    Example: edigw mapping new --sample orders.csv --target orders.create --out mappings/acme.yaml

    Every field of the operation gets the column whose name and values fit best, or a TODO;
    the sample's columns are listed at the end. The new mapping is then checked and tried on
    the sample at once (on stderr).
    """
    import tempfile

    from edigw.errors import EdigwError
    from edigw.mapping.scaffold_text import scaffold

    if out is not None and out.exists() and not force:
        msg = f"{out} already exists (use --force to overwrite it)"
        raise click.ClickException(msg)
    try:
        text, _ = scaffold(sample, target, out=out, layout=layout)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
            click.echo(f"Wrote {out}", err=True)
            _try_scaffold(out, sample)
            return
        click.echo(text, nl=False)
        with tempfile.TemporaryDirectory() as folder:
            probe = Path(folder) / "new-mapping.yaml"
            probe.write_text(
                scaffold(sample, target, out=probe, layout=layout, absolute=True)[0],
                encoding="utf-8",
            )
            _try_scaffold(probe, sample)
    except EdigwError as exc:
        raise click.ClickException(str(exc)) from exc


def _try_scaffold(mapping: Path, sample: Path) -> None:
    """`mapping check --sample` and `mapping test` on a new scaffold, summed up on stderr."""
    from edigw.mapping.sample import try_mapping

    trial = try_mapping(mapping, sample)
    if trial.problems:
        click.echo(f"check: {len(trial.problems)} problem(s):", err=True)
        for problem in trial.problems:
            click.echo(f"  {problem}", err=True)
        msg = "the scaffold does not pass `edigw mapping check`; please report it"
        raise click.ClickException(msg)
    click.echo(f"check: ok ({mapping.name} -> {trial.target})", err=True)
    click.echo(
        f"test: {trial.documents} document(s) from {sample.name}: {trial.valid} valid, "
        f"{trial.documents - trial.valid} with problems",
        err=True,
    )
    if trial.first_problem:
        click.echo(f"  first problem: {trial.first_problem}", err=True)
        click.echo(f"  see them all: edigw mapping test {mapping} {sample}", err=True)


@mapping_group.command("test")
@click.argument("mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("sample", type=click.Path(exists=True, path_type=Path))
@click.option("--explain", is_flag=True, help="Show on stderr where every target value came from.")
@click.option(
    "--expect",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Golden JSON file: print a diff and exit 1 when the output differs.",
)
@click.option("--encoding", default=None, help="Override the mapping's encoding (e.g. cp1252).")
@click.option(
    "--against-ecolix",
    "against_ecolix",
    is_flag=True,
    help="Also ask Ecolix (the one of -c edigw.yaml, with ECOLIX_TOKEN) whether it would "
    "accept each document: a dry run that creates nothing and costs one call per write.",
)
@config_option
def mapping_test_command(
    mapping: Path,
    sample: Path,
    *,
    explain: bool,
    expect: Path | None,
    encoding: str | None,
    against_ecolix: bool,
    config_path: Path,
) -> None:
    """Print, as JSON, the Ecolix operations a sample file (or folder of samples) would produce.

    Example: edigw mapping test mappings/ecommerce-orders-csv.yaml samples/ecommerce/ecommerce-orders-csv

    Each document is printed as soon as it is mapped (a big file is never held whole), then
    a summary on stderr. Nothing is sent to Ecolix, unless --against-ecolix: then each
    document is also sent to Ecolix as a dry run (business rules included, nothing created),
    and each refusal is shown with the source cell of every value refused. Without --expect,
    the exit code is 1 when a document has problems, is refused, or a file cannot be read.
    """
    from edigw.mapping.sample import diff_expected, run_samples

    if against_ecolix:
        if expect is not None:
            msg = "--against-ecolix and --expect do not go together: compare with the golden file first"
            raise click.ClickException(msg)
        _mapping_dry_run(mapping, sample, explain=explain, encoding=encoding, config=config_path)
        return
    if expect is None:
        _stream_mapping_test(mapping, sample, explain=explain, encoding=encoding)
        return
    with _mapping_errors():
        run = run_samples(_compiled(mapping), sample, explain=explain, encoding=encoding)
        difference = diff_expected(run, expect)
    for note in run.notes:
        click.echo(note, err=True)
    for line in run.explanations:
        click.echo(line, err=True)
    click.echo(run.to_json(), nl=False)
    if difference:
        click.echo("\n".join(difference), err=True)
        msg = f"output differs from {expect}"
        raise click.ClickException(msg)
    click.echo(f"output matches {expect}", err=True)


def _stream_mapping_test(
    mapping: Path, sample: Path, *, explain: bool, encoding: str | None
) -> None:
    """``mapping test`` without ``--expect``: each document printed as it is mapped (the
    JSON array is written piece by piece, a big file is never held), ``--explain`` lines
    and reader notes on stderr as they come, a summary at the end."""
    from edigw.mapping.sample import JsonArrayWriter, SampleStream

    def explained(lines: list[str]) -> None:
        for line in lines:
            click.echo(line, err=True)

    shown = 0
    out = JsonArrayWriter(lambda text: click.echo(text, nl=False))
    with _mapping_errors():
        stream = SampleStream(
            _compiled(mapping), sample, explain=explain, encoding=encoding, explained=explained
        )
        for entry in stream.entries():
            for note in stream.notes[shown:]:
                click.echo(note, err=True)
            shown = len(stream.notes)
            out.add(entry)
    out.close()
    for note in stream.notes[shown:]:
        click.echo(note, err=True)
    click.echo(f"mapping test: {stream.summary()}", err=True)
    if not stream.ok:
        msg = 'some documents have problems (see "problems" above)'
        raise click.ClickException(msg)


def _compiled(mapping: Path) -> CompiledMapping:
    from edigw.mapping import load_mapping

    return load_mapping(mapping)


@contextmanager
def _mapping_errors() -> Iterator[None]:
    """A mapping or a sample that cannot be used, as a command-line error (each problem on
    its own line when there are several)."""
    try:
        yield
    except EdigwError as exc:
        problems = getattr(exc, "problems", None)
        if isinstance(problems, list) and len(problems) > 1:
            raise click.ClickException("\n".join(str(p) for p in problems)) from exc
        raise click.ClickException(str(exc)) from exc


def _mapping_dry_run(
    mapping: Path, sample: Path, *, explain: bool, encoding: str | None, config: Path
) -> None:
    """``mapping test --against-ecolix``: the documents with Ecolix's answers (JSON on
    stdout), each answer and the calls it cost for people (stderr)."""
    from edigw.mapping import load_mapping
    from edigw.mapping.dryrun import dry_run, lines_of
    from edigw.mapping.sample import run_samples
    from edigw.pipeline.assembly import ecolix_client

    if not config.is_file():
        msg = (
            f"{config} not found: --against-ecolix takes the Ecolix address and token from "
            "the gateway configuration (-c PATH, or `edigw init DIR` to make one)"
        )
        raise click.ClickException(msg)
    settings = _load(config, secrets=False)
    _need_secrets(settings, "mapping test --against-ecolix asks Ecolix")
    try:
        compiled = load_mapping(mapping)
        if explain:
            for line in run_samples(compiled, sample, explain=True, encoding=encoding).explanations:
                click.echo(line, err=True)
        with ecolix_client(settings) as client:
            run = dry_run(compiled, sample, client, encoding=encoding)
    except EdigwError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    for line in lines_of(run):
        click.echo(line, err=True)
    _echo_json(run.data())
    if not run.ok:
        msg = "some documents were refused by Ecolix or not sent (see above)"
        raise click.ClickException(msg)
