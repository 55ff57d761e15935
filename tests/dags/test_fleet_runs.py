"""The logic the example DAGs share, on plain data."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_ovcache.fleet.inventory import parse_fleet
from airflow_ovcache.fleet.runs import host_outcome, hosts_for_run, release_summary, releases_of_run

FLEET = parse_fleet(
    {
        "defaults": {"cache_dir": "/c", "repository": "/r"},
        "hosts": [
            {"name": "h1", "labels": ["eu"]},
            {"name": "h2", "labels": ["us"]},
            {"name": "h3", "queue": "h3", "labels": ["eu"]},
        ],
    }
)


class Events(dict):  # type: ignore[type-arg]
    """Iterable of assets and indexable, like context["triggering_asset_events"]."""


class _Asset(SimpleNamespace):
    __hash__ = object.__hash__


def _asset(uri: str) -> _Asset:
    return _Asset(uri=uri)


def test_release_from_events_takes_the_newest_version_per_model() -> None:
    a, b = _asset("ovmodel://models/mlp"), _asset("ovmodel://models/tiny")
    events = Events(
        {
            a: [SimpleNamespace(extra={"version": 2}), SimpleNamespace(extra={"version": 3})],
            b: [SimpleNamespace(extra={"payload": {"version": 1}})],
        }
    )
    events[_asset("s3://elsewhere/x")] = [SimpleNamespace(extra={"version": 9})]  # not a release: ignored
    assert releases_of_run(events, {}, ["mlp", "tiny"]) == [{"model": "mlp", "version": 3}, {"model": "tiny", "version": 1}]


def test_release_from_params_is_checked() -> None:
    assert releases_of_run(None, {"model": "mlp", "version": 4}, ["mlp"]) == [{"model": "mlp", "version": 4}]
    with pytest.raises(ValueError, match="not one of this DAG's release models"):
        releases_of_run(None, {"model": "other", "version": 4}, ["mlp"])
    with pytest.raises(ValueError, match="give the version"):
        releases_of_run(None, {"model": "mlp"}, ["mlp"])
    with pytest.raises(ValueError, match="carries no release"):
        releases_of_run(None, {}, ["mlp"])


def test_queue_routed_hosts_are_left_to_the_queue_dags(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="airflow_ovcache.fleet.runs"):
        assert [h.name for h in hosts_for_run(FLEET, {})] == ["h1", "h2"]
    assert "host h3: routed by queue h3" in caplog.text
    assert [h.name for h in hosts_for_run(FLEET, {"labels": ["eu"]})] == ["h1"]
    with pytest.raises(ValueError, match="no host"):
        hosts_for_run(FLEET, {"hosts": ["h3"]})


def test_outcome_names_the_first_failed_step_and_summary_lists_failures() -> None:
    steps = ["wait", "warm", "verify"]
    ok = host_outcome({s: {"result": {"summary": {"warmed": 1}}} for s in steps}, steps, host="h1", model="m", version=2)
    failed = host_outcome(
        {"wait": {"result": {}}, "warm": {"result": None, "error": {"message": "host h2: disk full"}}},
        steps,
        host="h2",
        model="m",
        version=2,
    )
    never = host_outcome({"wait": {"result": None, "error": None}}, steps, host="h3", model="m", version=2)
    assert ok["ok"] and not failed["ok"] and failed["failed_step"] == "warm" and failed["reason"] == "host h2: disk full"
    assert never["failed_step"] == "wait" and "did not finish" in never["reason"]
    text, failures = release_summary([failed, ok, never])
    assert text.splitlines()[0] == "release warm-up: 1 of 3 host(s) ok"
    assert failures == [
        "host h2, model m, version 2: FAILED at warm: host h2: disk full",
        "host h3, model m, version 2: FAILED at wait: step wait did not finish (see its log)",
    ]
