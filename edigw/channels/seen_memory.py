"""What an inbound channel knows, between polls, of which listed files were processed already.

A file left in place after it was processed (``after: leave``, or a move that failed) is
remembered in the journal by its size and mtime (``SeenFiles``), so that it is not taken in
again. Asking the journal about every listed file at every poll made a poll cost one query per
file in the folder: a backlog of N files cost O(N²) queries before the last one was taken in.

The answer for one version of a file (its size and mtime) changes only when that version is
remembered, which this channel does itself (and says so here: :meth:`SeenAnswers.remembered`).
So each version is asked about once, all the new ones of a poll in one batch; and a file about
to be handed out on an answer from an earlier poll is asked about again, in one batch too, so
that a version another gateway remembered meanwhile (several nodes on one journal) is not taken
in a second time. A poll asks at most two batched questions, of the new files and of those it
hands out, whatever the size of the folder.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from edigw.channels.base import Listed, SeenFiles


@dataclass(frozen=True, slots=True)
class _Answer:
    size: int
    mtime: float
    seen: bool
    #: the poll it was asked at (``SeenAnswers.polls``)
    asked_at: int


class SeenAnswers:
    """The journal's answers to "processed already?" for one channel's files, per version.

    ``path_of`` turns a listed name into the path the journal remembers (the SFTP channel
    keeps remote paths; the local one, names relative to its folder). Thread-safe: a channel's
    ``complete`` (another thread) tells of what it remembered while a poll runs.
    """

    def __init__(
        self, seen: SeenFiles, channel: str, *, path_of: Callable[[str], str] = str
    ) -> None:
        self._seen = seen
        self._channel = channel
        self._path_of = path_of
        self._answers: dict[str, _Answer] = {}
        self._lock = threading.Lock()
        #: polls begun (``unseen`` calls): an answer of an earlier poll is asked again on hand-out
        self.polls = 0

    def unseen(self, listing: Sequence[Listed], *, present: Collection[str]) -> list[Listed]:
        """``listing`` without the files processed already. Only versions not asked about
        before are asked, in one batch; answers for names no longer ``present`` are dropped."""
        with self._lock:
            self.polls += 1
            poll = self.polls
            for gone in self._answers.keys() - present:
                del self._answers[gone]
            new = [f for f in listing if self._answer(f) is None]
        self._ask(new, poll)
        with self._lock:
            return [f for f in listing if not self._is_seen(f)]

    def confirm(self, chosen: Sequence[Listed]) -> tuple[list[Listed], list[Listed]]:
        """Of files about to be handed out: those still not processed, and those processed
        since (asked again, in one batch, when their answer is from an earlier poll)."""
        with self._lock:
            poll = self.polls
            stale = [f for f in chosen if (a := self._answer(f)) is None or a.asked_at != poll]
        self._ask(stale, poll)
        with self._lock:
            seen = {f.name for f in chosen if self._is_seen(f)}
        return [f for f in chosen if f.name not in seen], [f for f in chosen if f.name in seen]

    def remembered(self, name: str, size: int, mtime: float) -> None:
        """This channel remembered ``name`` at this version as processed."""
        with self._lock:
            self._answers[name] = _Answer(size, float(mtime), seen=True, asked_at=self.polls)

    def _answer(self, listed: Listed) -> _Answer | None:
        """The answer for this very version of ``listed`` (``None``: not asked yet)."""
        answer = self._answers.get(listed.name)
        if answer is None or (answer.size, answer.mtime) != (listed.size, float(listed.mtime)):
            return None
        return answer

    def _is_seen(self, listed: Listed) -> bool:
        answer = self._answer(listed)
        return answer is not None and answer.seen

    def _ask(self, files: Sequence[Listed], poll: int) -> None:
        """Ask the journal about ``files`` at once. A version remembered here meanwhile stays
        seen whatever the journal said (its answer may predate the remembering)."""
        if not files:
            return
        by_path = {self._path_of(f.name): f for f in files}
        seen = self._seen.seen_among(
            self._channel, {path: (f.size, f.mtime) for path, f in by_path.items()}
        )
        with self._lock:
            for path, f in by_path.items():
                answer = path in seen or self._is_seen(f)
                self._answers[f.name] = _Answer(f.size, float(f.mtime), answer, asked_at=poll)
