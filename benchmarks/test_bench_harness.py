"""Per-case overhead of the harness around a runner that does no work."""

import itertools

from evalsuite.data.cases import Case
from evalsuite.results.store import RunStore
from evalsuite.scenarios.generate import _generate_batch


def test_bench_harness_per_case(benchmark, null_runner, tmp_path):
    store = RunStore(tmp_path / "run")
    seeds = itertools.count()

    def one_case():
        rows = _generate_batch(
            null_runner, store, "bench-null", [(Case("a", "a prompt"), next(seeds))], "tiny"
        )
        for r in rows:
            store.append_row(r.to_dict())
        return rows

    rows = benchmark(one_case)
    assert rows[0].status == "ok"


def test_bench_tracker_step_callback(benchmark, null_runner):
    from evalsuite.trackers.tracking import Tracker

    def loop():
        tr = Tracker(null_runner.device)
        with tr.phase("denoise"):
            for i in range(28):
                tr.step_callback(None, i, 0, {})
        return tr

    assert len(benchmark(loop).steps) == 28
