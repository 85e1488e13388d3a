"""What a user should hear before trusting a linkage run: comparisons that mostly compare nothing.

A comparison whose field is missing or unreadable for most records (a date in a format the
field does not declare, a column named wrong) falls to its "null" level, weight 0, and the model
quietly links on the other fields. `coverage_warnings` names such a field and the column it read.
"""

from __future__ import annotations

from streams.linkage.index import Batch, RegistryIndex

__all__ = ["MOSTLY_MISSING", "coverage_warnings"]

MOSTLY_MISSING = 0.5  # a field missing for more than this share of one side's rows is worth a warning


def coverage_warnings(index: RegistryIndex, batch: Batch, *, left_name: str = "left",
                      right_name: str = "right") -> list[str]:
    """One line per compared field that is missing for most registry entries or most records."""
    settings = index.settings
    compared = {c.field for c in settings.comparisons} | {
        lv.with_ for c in settings.comparisons for lv in c.levels if lv.with_ is not None}
    warnings = []
    for name, (entries, records) in index.missing_shares(batch).items():
        if name not in compared:
            continue
        field = settings.field_named(name)
        sides = [(share, column, where) for share, column, where in
                 ((entries, field.left, left_name), (records, field.right, right_name)) if share > MOSTLY_MISSING]
        if settings.dedupe:
            sides = sides[:1]
        for share, column, where in sides:
            hint = ""
            if field.kind == "date":
                hint = (" (is its format declared? it reads " + (repr(field.format) if field.format else
                        "yyyy-mm-dd, dd/mm/yyyy and yyyy; declare \"format\": \"%Y%m%d\" for 19840923") + ")")
            warnings.append(f"field {name!r} is missing or unreadable in {share:.0%} of {where} "
                            f"(column {column!r}){hint}: its comparisons weigh nothing there")
    return warnings
