"""The garbage collector pause around bulk batches: process-wide, counted across nested and concurrent
batches, restored on errors, and never turning on a collector somebody else had turned off."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from payroster.services.bulk import collector_paused


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    """Each test starts with the collector on and leaves it as it found it, on or off (a test that turns it
    off used to leave it off for every later test of the run)."""
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_off_inside_back_on_after() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_back_on_after_an_error() -> None:
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("a bad row")
    assert gc.isenabled()


def test_nested_pauses_end_with_the_outer_one() -> None:
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_batches_in_two_threads() -> None:
    """A batch that ends while another still runs leaves the collector off for the other."""
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with collector_paused():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with collector_paused():
            second_in.set()
            first_out.wait(5)
            seen["after the first ended"] = gc.isenabled()
        seen["after both"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"after the first ended": False, "after both": True}


def test_a_collector_turned_off_elsewhere_stays_off() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()
