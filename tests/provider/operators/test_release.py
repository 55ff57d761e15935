"""A model release asset carries its version to the warm-up DAG it schedules."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import blobs_in
from tests.provider.conftest import load_dag, run_asset_triggered, run_dag


def test_release_event_version_is_warmed_on_every_host(airflow_db: Path, local_hosts: dict[str, Path]) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    published = run_dag(load_dag("ovc_release", "publish_dag"), {"version": 1})
    assert published.state == "success"
    with create_session() as session:
        event = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == "ovmodel://test-repo/mlp")
            .order_by(AssetEvent.id.desc())
        ).first()
        assert event is not None and event.extra["version"] == 1

    # The policy default would be latest:1 (version 2); the release says version 1.
    result = run_asset_triggered(load_dag("ovc_release"))
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks]
    warms = result.mapped("warm")
    assert sorted(w.xcom["host"] for w in warms) == ["host-a", "host-b"]
    for w in warms:
        assert [(i["model"], i["version"], i["status"]) for i in w.xcom["items"]] == [("mlp", 1, "warmed")]
    for cache in local_hosts.values():
        assert len(blobs_in(cache)) == 1

    # Each host's cache of mlp became an asset through the alias.
    with create_session() as session:
        uris = set(
            session.scalars(
                select(AssetModel.uri)
                .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.uri.like("ovcache://%/mlp"))
            )
        )
        assert {"ovcache://host-a/mlp", "ovcache://host-b/mlp"} <= uris
        extras = [
            e.extra
            for e in session.scalars(
                select(AssetEvent)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.uri == "ovcache://host-a/mlp")
            )
        ]
        assert {"host": "host-a", "model": "mlp", "versions": [1], "devices": ["CPU"]}.items() <= extras[-1].items()
