"""The project's one Markdown-table helper: every table (the evaluation's, the benchmarks') is drawn here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

ALIGNMENTS = {"-": "---", "l": ":---", "r": "---:", "c": ":---:"}


def markdown_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "", digits: int | None = 4
) -> str:
    """A Markdown table: the header line, the alignment line, then one line per row.

    A cell is written as it is when a str, "-" when None, with `digits` decimals when a float (str() when
    `digits` is None), str() otherwise; "|" is escaped and a line break becomes a space, so no cell
    breaks the table. `align` holds one letter per column (l, r, c, or - for Markdown's default);
    empty means the default everywhere. A row of another width than the header raises ValueError.
    """
    if align and len(align) != len(header):
        raise ValueError(f"{len(align)} alignments for {len(header)} columns")
    lines = [_line(header, digits), "|" + "|".join(ALIGNMENTS[a] for a in align or "-" * len(header)) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row of {len(row)} cells under {len(header)} columns: {row!r}")
        lines.append(_line(row, digits))
    return "\n".join(lines)


def cell(value: object, digits: int | None = 4) -> str:
    """One table cell as text (see `markdown_table`)."""
    if value is None:
        text = "-"
    elif isinstance(value, float) and digits is not None:
        text = f"{value:.{digits}f}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def _line(cells: Sequence[object], digits: int | None) -> str:
    return "| " + " | ".join(cell(value, digits) for value in cells) + " |"


def spread_cell(spread: dict) -> str:
    """A spread over seeds as one cell: mean ± std."""
    return f"{spread['mean']:.3f} ± {spread['std']:.3f}"
