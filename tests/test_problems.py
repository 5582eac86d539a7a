"""Error texts stay small whatever the number or size of problems; full lists stay compact."""

from __future__ import annotations

import logging
import re

from edigw.channels.base import Disposition, error_report
from edigw.errors import DataProblem, FieldError, Problem, SourceDataError
from edigw.logs import LOG_MESSAGE_LIMIT, JsonFormatter, TextFormatter
from edigw.model import Location
from edigw.problems import (
    MAX_KEPT,
    MAX_KEPT_MESSAGE,
    MAX_MESSAGE,
    ProblemEntry,
    ProblemList,
    bounded,
    describe,
    summarize,
)

#: "about 2 KB": the budget plus the closing "… and N more problems".
ABOUT_2_KB = MAX_MESSAGE + 64


def bad_lines(n: int) -> list[DataProblem]:
    return [
        DataProblem(
            "'abc' is not a decimal number",
            Location("big.csv", line=i + 2, column=6, field="quantite"),
            f"/lines/{i}/quantity",
        )
        for i in range(n)
    ]


def test_a_short_error_text_is_kept_whole() -> None:
    problems = bad_lines(3)
    assert describe(problems) == "\n".join(str(p) for p in problems)
    assert bounded("nothing to cut") == "nothing to cut"


def test_200000_problems_make_an_error_text_of_about_2_kb_that_counts_the_rest() -> None:
    text = describe(bad_lines(200_000))
    assert len(text) <= ABOUT_2_KB
    shown = text.count("\n")  # one line per problem shown, then the count
    assert text.startswith("big.csv:2:6 field quantite [/lines/0/quantity]: 'abc' is not")
    assert text.endswith(f"… and {200_000 - shown:,} more problems")


def test_one_huge_problem_is_cut_saying_how_much_was_left_out() -> None:
    huge = DataProblem("[" + '{"article_code":"ART-0133"},' * 500_000 + "] has more than 500 items")
    text = describe([huge])
    assert len(text) <= MAX_MESSAGE
    kept, tail = text.split("…")
    assert str(huge).startswith(kept)
    left_out = int(re.fullmatch(r" \(([\d,]+) more characters\)", tail)[1].replace(",", ""))  # type: ignore[index]
    assert len(kept) + left_out == len(str(huge))


def test_a_problem_after_the_first_takes_at_most_a_line_of_500_characters() -> None:
    problems = [DataProblem("first"), DataProblem("x" * 10_000), DataProblem("third")]
    lines = describe(problems).split("\n")
    assert lines[0] == "first"
    assert 490 <= len(lines[1]) <= 500 and lines[1].endswith("more characters)")
    assert lines[2] == "third"


def test_a_multi_line_text_is_cut_by_lines() -> None:
    text = bounded("\n".join(f"D-{i} failed: no such customer" for i in range(10_000)))
    assert len(text) <= ABOUT_2_KB
    assert text.endswith("more lines")


def test_summarize_reads_no_further_than_it_shows_when_told_the_total() -> None:
    read = []

    def lines() -> object:
        for i in range(1_000_000):
            read.append(i)
            yield f"problem {i}"

    text = summarize(lines(), total=1_000_000)  # type: ignore[arg-type]
    assert len(read) < 300
    assert text.endswith("more problems")


def test_a_source_data_error_names_its_first_problems_and_keeps_them_all() -> None:
    problems = bad_lines(50_000)
    error = SourceDataError(problems)
    assert len(str(error)) <= ABOUT_2_KB
    assert str(error).endswith("more problems")
    assert len(error.problems) == 50_000


def test_an_ecolix_problem_with_thousands_of_field_errors_prints_within_2_kb() -> None:
    problem = Problem(
        422,
        title="Unprocessable",
        detail="invalid order",
        errors=[FieldError(f"/lines/{i}/article_code", "unknown article") for i in range(9_000)],
    )
    text = str(problem)
    assert len(text) <= ABOUT_2_KB
    assert text.startswith("422 Unprocessable: invalid order; /lines/0/article_code: unknown")
    assert text.endswith("more problems")


def test_a_full_list_keeps_the_first_10000_problems_and_the_total() -> None:
    full = ProblemList.of(bad_lines(25_000))
    assert len(full.entries) == MAX_KEPT
    assert (full.total, full.left_out) == (25_000, 15_000)
    assert str(full.entries[0]) == str(bad_lines(1)[0])


def test_a_full_list_is_compressed_and_reads_back_the_same() -> None:
    full = ProblemList.of(bad_lines(25_000))
    body, compressed = full.encode()
    assert compressed
    assert len(body) < 200_000  # 10,000 problems of ~80 characters: 800 KB as text
    assert ProblemList.decode(body, compressed=True) == full


def test_a_small_full_list_is_stored_as_plain_json() -> None:
    full = ProblemList.of([ProblemEntry(None, "/code", "required")])
    body, compressed = full.encode()
    assert not compressed
    assert ProblemList.decode(body, compressed=False) == full


def test_a_huge_message_in_a_full_list_is_cut() -> None:
    full = ProblemList.of([DataProblem("y" * 1_000_000)])
    message = full.entries[0].message
    assert MAX_KEPT_MESSAGE - 10 <= len(message) <= MAX_KEPT_MESSAGE
    assert message.endswith("more characters)")


def test_an_error_report_holds_a_few_documents_and_points_to_the_full_list() -> None:
    reason = "\n".join(f"D-{i} ORDER-{i}: {'x' * 1500}" for i in range(5_000))
    report = error_report("big.csv", Disposition(ok=False, reason=reason, show_id="F-3"), when="t")
    assert len(report) < 4 * MAX_MESSAGE + 300
    assert "more lines" in report
    assert "edigw show F-3 --all" in report


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("edigw.runtime", logging.ERROR, __file__, 1, message, None, None)


def test_a_log_line_stays_within_its_limit_in_text_and_json() -> None:
    huge = "F-1 big.csv: " + "[/lines] too many; " * 1_000_000
    text = TextFormatter("%(levelname)s %(message)s").format(record(huge))
    as_json = JsonFormatter().format(record(huge))
    assert len(text) <= LOG_MESSAGE_LIMIT + 20
    assert len(as_json) <= LOG_MESSAGE_LIMIT + 300
    assert "more characters" in text and "more characters" in as_json
