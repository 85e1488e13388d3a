"""The bounded window of recent deliveries the share stage drops replays by."""

from streams.dedupe import RecentDeliveries, Window


def test_a_window_remembers_the_last_keys_and_forgets_the_oldest() -> None:
    window = Window(2)
    assert window.add("a") and window.add("b") and not window.add("a")
    assert window.add("c") and "a" not in window and {"b", "c"} <= {k for k in "abc" if k in window}
    assert len(window) == 2


def test_a_replay_is_dropped_once_seen_or_read_back_from_the_ledger_and_off_means_off() -> None:
    recent = RecentDeliveries(10)
    assert recent.first_time("s", "k1.a") and not recent.first_time("s", "k1.a") and recent.first_time("t", "k1.a")
    recent.observe_fact({"kind": "delivery", "subscription_id": "s", "records": [{"agency_event_id": "k1.b"}]})
    recent.observe_fact({"kind": "verification", "subscription_id": "s", "records": [{"agency_event_id": "k1.c"}]})
    assert not recent.first_time("s", "k1.b") and recent.first_time("s", "k1.c")
    off = RecentDeliveries(0)
    assert off.primed.is_set() and off.first_time("s", "x") and off.first_time("s", "x")
