"""``archive:``: where every original is archived when not in ``<data_dir>/archive`` (which
this node alone reads): a folder every node mounts, or the journal's PostgreSQL database."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edigw.config.base import _Model
from edigw.config.values import ConfigPath


class FolderArchiveSettings(_Model):
    """The archive in a folder every node mounts (NFS or similar); each node checks at start
    that it sees the same folder as the others."""

    kind: Literal["folder"] = Field(description="A folder shared by every node.")
    path: ConfigPath = Field(
        description="The shared folder, mounted at the same place on every node."
    )


class PostgresArchiveSettings(_Model):
    """The archive in the journal's PostgreSQL database (large objects), for nodes that
    share no storage; only with a PostgreSQL journal."""

    kind: Literal["postgresql"] = Field(description="Large objects in the journal database.")


ArchiveSettings = Annotated[
    FolderArchiveSettings | PostgresArchiveSettings, Field(discriminator="kind")
]
