"""The answer deadline: a data owner answers a subscription request within N working days.

    calendar = WorkingCalendar.from_settings(settings)          # GSP_HOLIDAYS
    due = calendar.due(requested_at, settings.answer_days)      # GSP_ANSWER_DAYS, default 2
    overdue(due, now)

Working days are Monday to Friday, less the configured public holidays, counted in Vietnam's
local time (Asia/Ho_Chi_Minh) whatever clock the caller's datetimes carry. The day of the request
never counts, so a request at 23:59 on a Friday and one at 08:00 get the same deadline: the end
(00:00 of the next local day) of the N-th working day after it. Deadlines are returned in UTC,
the one clock the control plane stores. Naive datetimes are refused so that nobody compares a
local wall clock with a UTC one. Pure and stdlib only: the caller passes `now`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from schemas.settings import Settings

__all__ = ["VIETNAM", "WorkingCalendar", "overdue"]

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
_DAY = timedelta(days=1)


def _aware(name: str, value: datetime) -> datetime:
    """`value` itself, or ValueError when it carries no UTC offset."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value


@dataclass(frozen=True)
class WorkingCalendar:
    """Which local days are working days, and the deadlines counted in them."""

    holidays: frozenset[date] = frozenset()
    tz: ZoneInfo = field(default=VIETNAM)

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkingCalendar:
        """The calendar of GSP_HOLIDAYS ("YYYY-MM-DD" strings); ValueError names a date that does not exist."""
        holidays = set()
        for text in settings.holidays:
            try:
                holidays.add(date.fromisoformat(text))
            except ValueError:
                raise ValueError(f"GSP_HOLIDAYS: {text!r} is not a date as YYYY-MM-DD") from None
        return cls(holidays=frozenset(holidays))

    def is_working_day(self, d: date) -> bool:
        """Monday to Friday and not a public holiday."""
        return d.weekday() < 5 and d not in self.holidays

    def _midnight(self, d: date) -> datetime:
        """00:00 local of day `d`, in UTC."""
        return datetime.combine(d, time(), tzinfo=self.tz).astimezone(UTC)

    def due(self, requested_at: datetime, days: int) -> datetime:
        """The end of the `days`-th working day after the local day of `requested_at`, in UTC.

        The end is exclusive: 00:00 local of the following day. The request's own day never
        counts, whether it is a working day or not.
        """
        local_day = _aware("requested_at", requested_at).astimezone(self.tz).date()
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        counted = 0
        day = local_day
        while counted < days:
            day += _DAY
            counted += self.is_working_day(day)
        return self._midnight(day + _DAY)

    def working_days_left(self, now: datetime, due: datetime) -> float:
        """Working time from `now` to `due`, in working days; negative once overdue.

        Only the hours of working days count, each working day counting 1 however long it is
        locally: at the request Friday 15:00 with a Tuesday deadline, 2.375 (the rest of Friday,
        Monday, Tuesday); Saturday, 2.0; Wednesday 12:00 after it, -0.5.
        """
        start, end = _aware("now", now), _aware("due", due)
        if start > end:
            return -self.working_days_left(end, start)
        total = 0.0
        day = start.astimezone(self.tz).date()
        while (day_start := self._midnight(day)) < end:
            day_end = self._midnight(day + _DAY)
            if self.is_working_day(day):
                overlap = min(end, day_end) - max(start, day_start)
                total += max(overlap, timedelta()) / (day_end - day_start)
            day += _DAY
        return total


def overdue(due: datetime, now: datetime) -> bool:
    """Whether the deadline has passed at `now` (`due` itself is the first overdue instant)."""
    return _aware("now", now) >= _aware("due", due)
