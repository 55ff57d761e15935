"""Provider metadata for Airflow's providers manager (plain data, no imports)."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-ovcache",
        "name": "OpenVINO model cache",
        "description": "Warm, verify and invalidate OpenVINO model caches across a fleet of inference hosts.",
        "versions": ["0.1.0"],
    }
