"""Loading ``edigw.yaml``: :func:`load_config` reads it, validates it against
``GatewayConfig`` and reports every problem at once, each with its path and line, in words
for people (``must be a whole number``, ``unknown key (did you mean 'mapping'?)``); then the
checks across flows (two flows on one folder) and the secrets left unset."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError

from edigw.config.base import _Model
from edigw.config.channels import DEFAULT_KNOWN_HOSTS_DIR, LocalChannel, SftpChannel
from edigw.config.gateway import GatewayConfig
from edigw.config.inbound import InboundFlow
from edigw.config.reading import Path_, _Built, _format_path, _format_problem, _parse_yaml
from edigw.errors import ConfigError

#: Union tags pydantic inserts into error locations; they are not keys of the file.
_UNION_TAGS = frozenset(
    {
        "inbound",
        "outbound",
        "local",
        "sftp",
        "stable",
        "min_age",
        "done_file",
        "move",
        "delete",
        "leave",
        "every-schedule",
        "cron-schedule",
        "folder",
        "postgresql",
    }
)


def _locate(data: Any, loc: Sequence[str | int], built: _Built) -> tuple[Path_, int | None]:
    """Turn a pydantic error location into the file's key path and the line to show."""
    path: list[str | int] = []
    line: int | None = built.lines.get((), None)
    node = data
    missing = False
    for part in loc:
        if part == "[key]":
            continue
        if missing:
            path.append(part)
            continue
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            path.append(part)
            node = node[part]
            line = built.lines.get(tuple(path), line)
        elif isinstance(part, str) and part in _UNION_TAGS:
            continue
        else:
            missing = True
            path.append(part)
    return tuple(path), line


_PLAIN_MESSAGES = {
    "missing": "required key is missing",
    "union_tag_not_found": "required key is missing",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a text value",
    "dict_type": "must be a mapping of keys",
    "model_type": "must be a mapping of keys",
    "model_attributes_type": "must be a mapping of keys",
    "list_type": "must be a list",
}
_BOUND_MESSAGES = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must not be empty",
}


def _all_field_names() -> set[str]:
    """Every key the file may use anywhere, for "did you mean" suggestions."""
    names: set[str] = set()
    pending: list[type[_Model]] = [_Model]
    while pending:
        model = pending.pop()
        names.update(model.model_fields)
        pending.extend(model.__subclasses__())
    return names


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = error.get("input")
    if kind in _PLAIN_MESSAGES:
        message = _PLAIN_MESSAGES[kind]
        if kind != "missing" and kind != "union_tag_not_found":
            message += f", got {got!r}"
        return message
    if kind in _BOUND_MESSAGES:
        plain = {
            k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()
        }
        return _BOUND_MESSAGES[kind].format(**plain)
    if kind == "extra_forbidden":
        key = error["loc"][-1] if error["loc"] else ""
        names = _all_field_names()
        if key in names:
            return "unknown key here (it is an option of another kind of entry)"
        close = difflib.get_close_matches(str(key), sorted(names), n=1)
        return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"
    if kind == "union_tag_invalid":
        tags = str(ctx.get("expected_tags", ""))
        return f"{ctx.get('tag')!r} is not one of {tags}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {error.get('input')!r}"
    if kind == "string_pattern_mismatch":
        return "names may use letters, digits, '-', '_', '.', '+' and start with a letter or digit"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message


def _locate_tag_error(error: Mapping[str, Any], path: Path_) -> Path_:
    if error["type"] in {"union_tag_not_found", "union_tag_invalid"}:
        discriminator = str((error.get("ctx") or {}).get("discriminator", "")).strip("'")
        if discriminator and discriminator.isidentifier():
            return (*path, discriminator)
    return path


def _default_known_hosts(data: dict[str, Any]) -> None:
    endpoints = data.get("sftp_endpoints")
    if isinstance(endpoints, dict):
        for name, endpoint in endpoints.items():
            if isinstance(endpoint, dict) and "known_hosts" not in endpoint:
                endpoint["known_hosts"] = f"{DEFAULT_KNOWN_HOSTS_DIR}/{name}"


def _folder_of(channel: LocalChannel | SftpChannel) -> tuple[str, ...]:
    if isinstance(channel, LocalChannel):
        return ("local", str(channel.path))
    return ("sftp", channel.endpoint, str(PurePosixPath(channel.path)))


def _shared_folders(config: GatewayConfig) -> Iterator[tuple[Path_, str]]:
    """Two flows on one folder would both take (or overwrite) the same files.

    Inbound flows may share a folder only with include patterns that tell their files apart
    (``*.csv`` beside ``*.xml``); an export never writes into a folder a flow reads from.
    """
    readers: dict[tuple[str, ...], InboundFlow] = {}
    for flow in config.inbound_flows():
        folder = _folder_of(flow.channel)
        other = readers.get(folder)
        if other is None:
            readers[folder] = flow
            continue
        overlap = set(flow.include) & set(other.include) or "*" in flow.include + other.include
        if overlap:
            yield (
                ("partners", flow.partner, "flows", flow.name, "channel"),
                f"the same folder as {other.id}, with overlapping include patterns: a file "
                "would be taken by both flows (give each flow its own folder)",
            )
    for export in config.outbound_flows():
        reader = readers.get(_folder_of(export.channel))
        if reader is not None:
            yield (
                ("partners", export.partner, "flows", export.name, "channel"),
                f"writes into the folder {reader.id} reads from: its files would come back in",
            )


def _unwrap(annotation: Any) -> Any:
    """``Annotated[X, ...]`` → X; ``X | None`` → X."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            kept = [a for a in get_args(annotation) if a is not type(None)]
            if len(kept) != 1:
                return annotation
            annotation = kept[0]
        else:
            return annotation


def _is_secret(path: Path_) -> bool:
    """Whether the key at ``path`` is a secret (``SecretStr``), from the models' types."""
    annotation: Any = GatewayConfig
    for part in path:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return False
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return False
    return _unwrap(annotation) is SecretStr


def _set_aside_secrets(built: _Built) -> dict[str, str]:
    """Unset ``${NAME}`` in secret keys, as ``{where: NAME}``; anywhere else they stay
    problems (a journal URL or a folder from the environment is needed by every command)."""
    missing = {}
    for line, where, name in built.unset:
        if _is_secret(where):
            missing[f"{built.file_name}:{line} {_format_path(where)}"] = name
        else:
            built.problem(line, where, f"environment variable {name} is not set")
    return missing


def load_config(
    path: Path, *, environ: Mapping[str, str], secrets_optional: bool = False
) -> GatewayConfig:
    """Read, interpolate and validate ``edigw.yaml``; every problem at once in ``ConfigError``.

    ``environ`` is the only source of ``${NAME}`` values (the CLI passes ``os.environ``).

    With ``secrets_optional``, a secret (the Ecolix token, SFTP passwords) whose variable is
    not set is no problem: commands that only read the journal (``status``, ``show``,
    ``files``...) run without ``ECOLIX_TOKEN``; a command that needs a secret calls
    :meth:`GatewayConfig.require_secrets` first.
    """
    file_name = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        msg = f"{path}: configuration file not found (create one with `edigw init DIR`)"
        raise ConfigError(msg) from None
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read the configuration file: {exc}"
        raise ConfigError(msg) from None

    built = _Built(file_name, secrets_optional=secrets_optional)
    data = _parse_yaml(text, environ, built)
    missing_secrets = _set_aside_secrets(built)
    if data is None and not built.problems:
        built.problem(1, (), "the file is empty")
    elif data is not None and not isinstance(data, dict):
        built.problem(1, (), "the top level must be a mapping of keys (ecolix:, partners:, ...)")
    if isinstance(data, dict):
        _default_known_hosts(data)
        endpoints = data.get("sftp_endpoints")
        context = {
            "base_dir": path.resolve().parent,
            "endpoints": set(endpoints) if isinstance(endpoints, dict) else set(),
        }
        try:
            config = GatewayConfig.model_validate(data, context=context)
        except ValidationError as exc:
            for error in exc.errors():
                where, line = _locate(data, error["loc"], built)
                where = _locate_tag_error(error, where)
                line = built.lines.get(where, line)
                built.problems.append(
                    (line or 0, _format_problem(file_name, line, where, _message(error)))
                )
        else:
            config._missing_secrets.update(missing_secrets)
            for where, message in _shared_folders(config):
                line = built.lines.get(where)
                built.problems.append((line or 0, _format_problem(file_name, line, where, message)))
            if not built.problems:
                return config
    problems = [text for _, text in sorted(built.problems, key=lambda item: item[0])]
    if len(problems) == 1:
        raise ConfigError(problems[0], problems=problems)
    summary = f"{file_name}: {len(problems)} problems in the configuration:\n" + "\n".join(
        f"  {problem}" for problem in problems
    )
    raise ConfigError(summary, problems=problems)
