"""Inbound flows (``direction: inbound``): partner files picked up from a channel, when a
file counts as completely written, what becomes of the source afterwards, and what one file
may cost the readers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edigw.config.base import _FlowBase, _Model
from edigw.config.channels import Channel
from edigw.config.values import Duration, ExistingFile, InboundEncoding, RelativeFolder, Size
from edigw.formats import limits as budget
from edigw.validation.policy import ValidationPolicy

DEFAULT_STABLE_INTERVAL = 2.0
DEFAULT_MIN_AGE = 10.0
DEFAULT_DONE_SUFFIX = ".ok"
DEFAULT_AFTER_MOVE_TO = "done"
DEFAULT_ERROR_FOLDER = "error"
DEFAULT_ENCODING = "auto"
DEFAULT_MAX_SIZE = 50 * 1024 * 1024
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_MAX_FILES_PER_POLL = 100
#: Names that are never picked up, whatever the flow's include/exclude say: files still
#: being written by partners' tools, and hidden files.
ALWAYS_EXCLUDED = ("*.tmp", "*.part", ".*")


class StableReadiness(_Model):
    """Ready when size and modification time are unchanged across two looks."""

    mode: Literal["stable"] = Field(description="Size and mtime stable across two looks.")
    interval: Duration = Field(
        default=DEFAULT_STABLE_INTERVAL, description="Seconds between the two looks."
    )


class MinAgeReadiness(_Model):
    """Ready once the file is old enough."""

    mode: Literal["min_age"] = Field(description="Ready once last modified long enough ago.")
    seconds: Duration = Field(
        default=DEFAULT_MIN_AGE, description="Minimum age since last modification."
    )


class DoneFileReadiness(_Model):
    """Ready when the partner has written a companion file (``NAME.ok``)."""

    mode: Literal["done_file"] = Field(description="Ready when NAME+suffix exists.")
    suffix: str = Field(
        default=DEFAULT_DONE_SUFFIX, min_length=1, description="Suffix of the done file."
    )


Readiness = Annotated[
    StableReadiness | MinAgeReadiness | DoneFileReadiness, Field(discriminator="mode")
]


class AfterMove(_Model):
    """Move the source into a folder once its outcome is committed."""

    action: Literal["move"] = Field(description="Move the source file.")
    to: RelativeFolder = Field(
        default=DEFAULT_AFTER_MOVE_TO, description="Folder, relative to the channel path."
    )


class AfterDelete(_Model):
    """Delete the source once its outcome is committed (the archive keeps a copy)."""

    action: Literal["delete"] = Field(description="Delete the source file.")


class AfterLeave(_Model):
    """Leave the source where it is; the journal remembers it so it is not taken twice."""

    action: Literal["leave"] = Field(description="Leave the source file in place.")


After = Annotated[AfterMove | AfterDelete | AfterLeave, Field(discriminator="action")]


class FlowLimits(_Model):
    """What one file may cost the readers (``edigw.formats.limits``): a file over a limit
    fails alone, named, with its size and the limit; the gateway goes on."""

    max_cells: int = Field(
        default=budget.MAX_CELLS,
        gt=0,
        description="Excel: rows x columns of the area a sheet's cells span (read densely).",
    )
    max_value_chars: int = Field(
        default=budget.MAX_VALUE_CHARS,
        gt=0,
        description="One value: a CSV field, an XML text or attribute, an Excel cell.",
    )
    max_line_chars: int = Field(
        default=budget.MAX_LINE_CHARS,
        gt=0,
        description="One line of a CSV or flat file.",
    )
    max_expanded_bytes: Size = Field(
        default=budget.MAX_EXPANDED_BYTES,
        description="Excel: the workbook uncompressed, and the text it repeats from shared strings.",
    )
    max_document_bytes: Size = Field(
        default=budget.MAX_DOCUMENT_BYTES,
        description="XML: one document element (an order and what it holds).",
    )
    max_document_tags: int = Field(
        default=budget.MAX_DOCUMENT_TAGS,
        gt=0,
        description="XML: tags in one document element (its tree is built in memory).",
    )
    max_lines_per_document: int = Field(
        default=budget.MAX_LINES_PER_DOCUMENT,
        gt=0,
        description="Records of one document (an order's lines); a larger one fails before it is built.",
    )
    max_seconds: Duration = Field(
        default=budget.MAX_SECONDS,
        gt=0,
        description="Seconds to read and map one file (or '5m').",
    )
    control_characters: Literal["refuse", "allow"] = Field(
        default=budget.CONTROL_CHARACTERS,
        description="NUL and other C0 control characters (tab, CR, LF aside): refuse the file, or allow them.",
    )

    def reader_limits(self) -> budget.ReaderLimits:
        """The value object the readers take."""
        return budget.ReaderLimits(**self.model_dump())


class InboundFlow(_FlowBase):
    """Partner files picked up from a channel, mapped, and sent to Ecolix."""

    direction: Literal["inbound"] = Field(description="Files come in from the partner.")
    channel: Channel = Field(description="Where the files are picked up.")
    mapping: ExistingFile = Field(description="The mapping file (mappings/*.yaml).")
    include: list[str] = Field(
        default_factory=lambda: ["*"], description="Glob patterns of names to pick up."
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Glob patterns of names to ignore; *.tmp, *.part and dotfiles always are.",
    )
    readiness: Readiness = Field(
        default_factory=lambda: StableReadiness(mode="stable"),
        description="When a file counts as completely written.",
    )
    after: After = Field(
        default_factory=lambda: AfterMove(action="move"),
        description="What to do with the source once its outcome is committed.",
    )
    error_folder: RelativeFolder = Field(
        default=DEFAULT_ERROR_FOLDER,
        description="Where failed files and their NAME.error.txt go, relative to the channel path.",
    )
    duplicates: Literal["skip", "process"] = Field(
        default="skip",
        description=(
            "skip: a file with the same bytes as one this flow already received is journalled "
            "skipped_duplicate (to resend what failed, replay the earlier file); process: it "
            "is posted again as new, under new idempotency keys."
        ),
    )
    ordered: bool = Field(
        default=False,
        description=(
            "true: a file's documents reach Ecolix strictly in file order, one at a time; "
            "false: in file order per business key only, documents of distinct keys sent "
            "concurrently."
        ),
    )
    encoding: InboundEncoding = Field(
        default=DEFAULT_ENCODING,
        description="Text encoding for readers that take one; auto detects UTF-8/cp1252.",
    )
    max_size: Size = Field(
        default=DEFAULT_MAX_SIZE, description="Larger files are refused (bytes, or '50MB')."
    )
    poll_interval: Duration = Field(
        default=DEFAULT_POLL_INTERVAL, description="Seconds between rescans of the channel."
    )
    max_files_per_poll: int = Field(
        default=DEFAULT_MAX_FILES_PER_POLL,
        ge=1,
        description=(
            "At most this many files per scan, oldest first; after a full batch the next "
            "scan follows at once, without waiting poll_interval."
        ),
    )
    limits: FlowLimits = Field(
        default_factory=FlowLimits,
        description="What one file may cost the readers (sizes, time, control characters).",
    )
    validation: ValidationPolicy | None = Field(
        default=None,
        description=(
            "E-invoice flows: what each validation layer does to a file (block, warn, off); "
            "unset, they use xsd: block, en16931: block, br_fr: warn. Other flows ignore it."
        ),
    )

    @property
    def skipped_patterns(self) -> tuple[str, ...]:
        """Every glob that excludes a name: the flow's own plus those always skipped."""
        return (*ALWAYS_EXCLUDED, *self.exclude)
