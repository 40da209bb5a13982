"""Free ports for the servers tests start: never one another worker of the same run may take."""

from support.servers import free_port


def ports_of_worker(monkeypatch, worker: str, draws: int = 40) -> list[int]:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    return [free_port() for _ in range(draws)]


def test_two_xdist_workers_hand_out_ports_from_slices_that_do_not_overlap(monkeypatch):
    first, second = ports_of_worker(monkeypatch, "gw0"), ports_of_worker(monkeypatch, "gw1")
    assert max(first) < min(second)
    assert len(set(first + second)) == len(first + second)  # none handed out twice


def test_a_run_without_workers_draws_from_both_slices(monkeypatch):
    second_slice_starts_below = min(ports_of_worker(monkeypatch, "gw1"))
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
    ports = [free_port() for _ in range(40)]
    assert min(ports) < second_slice_starts_below <= max(ports)
