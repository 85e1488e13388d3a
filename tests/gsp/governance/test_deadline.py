"""The answer deadline: working days in Vietnam's local time, weekends and holidays skipped."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gsp.governance.deadline import VIETNAM, WorkingCalendar, overdue
from schemas.settings import Settings

PLAIN = WorkingCalendar()
US = timedelta(microseconds=1)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0) -> datetime:
    """A wall-clock time in Hanoi."""
    return datetime(year, month, day, hour, minute, second, us, tzinfo=VIETNAM)


def test_friday_afternoon_gives_the_end_of_tuesday() -> None:
    due = PLAIN.due(local(2026, 12, 4, 15, 0), 2)
    assert due == local(2026, 12, 9)
    assert due.tzinfo is UTC and due == datetime(2026, 12, 8, 17, 0, tzinfo=UTC)


def test_a_holiday_on_the_way_pushes_the_deadline_a_day() -> None:
    calendar = WorkingCalendar(holidays=frozenset({date(2026, 12, 7)}))
    assert calendar.due(local(2026, 12, 4, 15, 0), 2) == local(2026, 12, 10)


def test_a_tet_week_of_holidays_is_skipped_whole() -> None:
    tet = frozenset(date(2027, 2, 8) + timedelta(days=i) for i in range(5))  # Monday to Friday
    calendar = WorkingCalendar(holidays=tet)
    # Thursday: Friday counts, then the weekend, the holiday week, the weekend, Monday 15th.
    assert calendar.due(local(2027, 2, 4, 10, 0), 2) == local(2027, 2, 16)
    assert not any(calendar.is_working_day(d) for d in tet)


def test_a_request_on_saturday_counts_from_monday() -> None:
    assert PLAIN.due(local(2026, 12, 5, 9, 30), 2) == local(2026, 12, 9)
    assert PLAIN.due(local(2026, 12, 5, 9, 30), 1) == local(2026, 12, 8)


def test_one_day_is_the_end_of_the_next_working_day() -> None:
    assert PLAIN.due(local(2026, 12, 1, 0, 0), 1) == local(2026, 12, 3)    # Tuesday 00:00: end of Wednesday
    assert PLAIN.due(local(2026, 12, 1, 23, 59), 1) == local(2026, 12, 3)  # the request day never counts
    assert PLAIN.due(local(2026, 12, 4, 8, 0), 1) == local(2026, 12, 8)    # Friday: end of Monday


def test_fewer_than_one_day_is_refused() -> None:
    for days in (0, -1):
        with pytest.raises(ValueError, match="at least 1"):
            PLAIN.due(local(2026, 12, 4, 15, 0), days)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 12, 4, 15, 0)
    aware = local(2026, 12, 4, 15, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        PLAIN.due(naive, 2)
    with pytest.raises(ValueError, match="timezone-aware"):
        overdue(naive, aware)
    with pytest.raises(ValueError, match="timezone-aware"):
        overdue(aware, naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        PLAIN.working_days_left(naive, aware)


def test_overdue_from_the_deadline_itself() -> None:
    due = PLAIN.due(local(2026, 12, 4, 15, 0), 2)
    assert not overdue(due, due - US)
    assert overdue(due, due)
    assert overdue(due, due + US)
    # Whatever clock the caller's `now` carries.
    assert overdue(due, datetime(2026, 12, 8, 17, 0, tzinfo=UTC))
    assert not overdue(due, local(2026, 12, 8, 23, 59, 59, 999_999))


def test_a_utc_request_counts_from_its_local_day() -> None:
    # 18:00 UTC on Friday is 01:00 on Saturday in Hanoi: no working day is lost or gained here...
    saturday = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    assert saturday.astimezone(VIETNAM) == local(2026, 12, 5, 1, 0)
    assert PLAIN.due(saturday, 2) == local(2026, 12, 9)
    # ...but 18:00 UTC on Sunday is 01:00 on Monday, which therefore does not count.
    assert PLAIN.due(datetime(2026, 12, 6, 18, 0, tzinfo=UTC), 2) == local(2026, 12, 10)
    # The same instant on any other clock gives the same deadline.
    assert PLAIN.due(datetime(2026, 12, 6, 19, 0, tzinfo=ZoneInfo("Europe/Paris")), 2) == local(2026, 12, 10)


def test_working_days_left_counts_only_working_hours() -> None:
    requested = local(2026, 12, 4, 15, 0)
    due = PLAIN.due(requested, 2)
    assert PLAIN.working_days_left(requested, due) == pytest.approx(2.375)  # 9 h of Friday, Monday, Tuesday
    assert PLAIN.working_days_left(local(2026, 12, 5, 12, 0), due) == pytest.approx(2.0)
    assert PLAIN.working_days_left(local(2026, 12, 8, 18, 0), due) == pytest.approx(0.25)
    assert PLAIN.working_days_left(due, due) == 0.0
    assert PLAIN.working_days_left(local(2026, 12, 9, 12, 0), due) == pytest.approx(-0.5)
    assert PLAIN.working_days_left(local(2026, 12, 12, 12, 0), due) == pytest.approx(-3.0)  # Saturday: Wed to Fri
    holiday = WorkingCalendar(holidays=frozenset({date(2026, 12, 7)}))
    assert holiday.working_days_left(requested, local(2026, 12, 9)) == pytest.approx(1.375)


def test_from_settings_reads_the_holidays() -> None:
    calendar = WorkingCalendar.from_settings(Settings(holidays=("2026-12-07", "2027-01-01")))
    assert calendar.holidays == {date(2026, 12, 7), date(2027, 1, 1)}
    assert calendar.tz == VIETNAM
    assert not calendar.is_working_day(date(2026, 12, 7))
    assert calendar.is_working_day(date(2026, 12, 8))
    assert not calendar.is_working_day(date(2026, 12, 5))  # Saturday
    assert WorkingCalendar.from_settings(Settings()) == PLAIN
    with pytest.raises(ValueError, match="2026-02-30"):
        WorkingCalendar.from_settings(Settings(holidays=("2026-02-30",)))


ZONES = st.sampled_from([UTC, VIETNAM, ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")])


@settings(max_examples=300, deadline=None)
@given(requested_at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=ZONES),
       days=st.integers(min_value=1, max_value=40),
       offsets=st.frozensets(st.integers(min_value=-3, max_value=90), max_size=40))
def test_due_is_after_the_request_at_local_midnight_after_exactly_days_working_days(
        requested_at: datetime, days: int, offsets: frozenset[int]) -> None:
    request_day = requested_at.astimezone(VIETNAM).date()
    calendar = WorkingCalendar(holidays=frozenset(request_day + timedelta(days=o) for o in offsets))
    due = calendar.due(requested_at, days)
    assert due.tzinfo is UTC
    assert due > requested_at
    due_local = due.astimezone(VIETNAM)
    assert (due_local.hour, due_local.minute, due_local.second, due_local.microsecond) == (0, 0, 0, 0)
    last_day = due_local.date() - timedelta(days=1)
    span = [request_day + timedelta(days=i) for i in range(1, (last_day - request_day).days + 1)]
    assert sum(calendar.is_working_day(d) for d in span) == days
    assert calendar.is_working_day(last_day)  # the deadline never ends on a weekend or a holiday
    assert not overdue(due, due - US) and overdue(due, due)
    assert calendar.working_days_left(requested_at, due) >= days
