"""Workload files: the repository's load, and every kind of bad one is refused by name."""

import pytest

from harness.bench.omb.workload import WorkloadError, load, standard


def test_the_repositorys_workloads_load_and_cover_the_issue():
    loads = [load(p) for p in standard(every=True)]
    assert {p.name for p in standard()} < {p.name for p in standard(every=True)}
    assert len(loads) >= 5
    kinds = {
        "max": any(w.finds_max for w in loads),
        "fixed": any(w.rate_of_max and not w.backlog_messages for w in loads),
        "steps": any(w.rate_steps for w in loads),
        "backlog": any(w.backlog_messages for w in loads),
        "16 topics 1 KiB": any(w.shape == (16, 1024) for w in loads),
        "kill the leader": any(w.nemesis == "kill-leader" for w in loads),
        "cut the leader off": any(w.nemesis == "partition-leader" for w in loads),
    }
    assert all(kinds.values()), kinds
    for w in loads:
        quick = w.quick()
        assert quick.duration_s <= (8 if w.nemesis else 2) and quick.warmup_s <= 1
        assert quick.shape == w.shape


def _write(tmp_path, text):
    path = tmp_path / "w.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("topics: 1\nmessageSise: 10\n", "unknown fields messageSise"),
        ("partitionsPerTopic: 4\n", "partitionsPerTopic must be 1"),
        ("subscriptionsPerTopic: 2\n", "subscriptionsPerTopic must be 1"),
        ("topics: many\n", "topics must be a number"),
        ("topics: 0\n", "topics must be at least 1"),
        ("rateSteps: [0.5, 3]\n", "rateSteps"),
        ("rateOfMax: 0\n", "rateOfMax"),
        ("- a list\n", "a YAML mapping"),
        ("nemesis: flood\n", "nemesis 'flood' is not one of kill-leader, partition-leader"),
        ("nemesis: kill-leader\nrateSteps: [0.5]\n", "fixed-rate workload only"),
        ("topics: [1\n", "not YAML"),
    ],
)
def test_a_bad_workload_is_refused_naming_the_field(tmp_path, text, names):
    with pytest.raises(WorkloadError) as caught:
        load(_write(tmp_path, text))
    assert names in str(caught.value)
    assert str(tmp_path / "w.yaml") in str(caught.value)


def test_a_missing_file_is_refused_in_one_line(tmp_path):
    with pytest.raises(WorkloadError, match="No such file"):
        load(tmp_path / "absent.yaml")


def test_omb_minutes_and_backlog_size_convert(tmp_path):
    w = load(
        _write(
            tmp_path,
            "testDurationMinutes: 1\nwarmupDurationMinutes: 0.5\nmessageSize: 100\n"
            "consumerBacklogSizeGB: 0.001\nconsumerPerSubscription: 3\n",
        )
    )
    assert (w.duration_s, w.warmup_s) == (60, 30)
    assert w.backlog_messages == 10_000
    assert w.consumers_per_topic == 3
    assert w.name == "w"
