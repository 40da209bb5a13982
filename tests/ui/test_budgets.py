"""Per-address budgets: a token bucket per client address."""

from ui.budgets import CallBudget


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_allowed_then_calls_are_refused_until_the_bucket_refills():
    clock = Clock()
    budget = CallBudget(rate=10, burst=30, clock=clock)
    assert all(budget.spend("a", 1) for _ in range(30))
    assert not budget.spend("a", 1)
    assert budget.spend("b", 1), "another address has its own budget"
    clock.now = 0.5
    assert [budget.spend("a", 1) for _ in range(6)] == [True] * 5 + [False]


def test_a_costly_call_takes_more():
    budget = CallBudget(rate=10, burst=30, clock=Clock())
    assert budget.spend("a", 21) and not budget.spend("a", 21)


def test_a_call_refused_for_its_cost_still_empties_the_bucket_so_the_next_is_refused_unread():
    clock = Clock()
    budget = CallBudget(rate=10, burst=30, clock=clock)
    assert budget.has_credit("a")
    assert not budget.spend("a", 1_000), "a forged 20,000-message conversation"
    assert not budget.has_credit("a") and not budget.spend("a", 1)
    assert budget.has_credit("b")
    clock.now = 0.1
    assert budget.has_credit("a"), "credit comes back at the budget's rate"


def test_a_rate_of_zero_is_no_budget():
    budget = CallBudget(rate=0, burst=0, clock=Clock())
    assert all(budget.spend("a", 100) for _ in range(1000))


def test_addresses_that_owe_nothing_are_forgotten_when_many_are_remembered(monkeypatch):
    monkeypatch.setattr(CallBudget, "MAX_ADDRESSES", 100)
    clock = Clock()
    budget = CallBudget(rate=10, burst=30, clock=clock)
    for n in range(100):
        budget.spend(f"old-{n}", 1)
    clock.now = 10.0
    budget.spend("new", 1)
    assert len(budget._buckets) == 1
