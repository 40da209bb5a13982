"""The garbage collector after start-up (`ui.heap`): start-up's objects frozen, young ones
collected in larger batches, and garbage made later still collected."""

import gc
import weakref

import pytest

from ui.heap import YOUNG_OBJECTS, settle_after_start


@pytest.fixture
def collector_restored():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class Node:
    """An object in a reference cycle: only the garbage collector frees it."""

    def __init__(self) -> None:
        self.itself = self


def test_after_start_the_heap_is_frozen_and_young_objects_are_collected_in_larger_batches(collector_restored):
    settle_after_start()
    assert gc.get_freeze_count() > 10_000  # this test process's modules, as a server's start-up
    assert gc.get_threshold()[0] == YOUNG_OBJECTS


def test_cycles_made_after_start_are_still_collected_without_an_explicit_collection(collector_restored):
    settle_after_start()
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    kept = [Node() for _ in range(3 * YOUNG_OBJECTS)]  # allocations: young collections run by themselves
    assert gone() is None
    assert all(node.itself is node for node in kept)
