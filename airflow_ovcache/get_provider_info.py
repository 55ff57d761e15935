"""Provider metadata for Airflow's providers manager.

Plain data: Airflow reads this through the ``apache_airflow_provider`` entry
point without importing any hook, so the connection form's fields are
declared here (``conn-fields``) rather than in hook methods. Only the
package's own ``__init__`` (a version string) is imported.
"""

from __future__ import annotations

from typing import Any

from . import __version__

INTEGRATION = "OpenVINO model cache"


def _string(label: str, description: str, default: str | None = None, **schema: Any) -> dict[str, Any]:
    field: dict[str, Any] = {"label": label, "description": description, "schema": {"type": ["string", "null"], **schema}}
    if default is not None:
        field["schema"]["default"] = default
    return field


def _number(label: str, description: str, default: float | int, kind: str = "number") -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": [kind, "null"], "default": default, "minimum": 0}}


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "cache_dir": _string("Cache directory", "OpenVINO cache_dir on the host, as the serving application sets it."),
    "repository": _string("Model repository", "Root of the model repository on the host (<model>/<version>/ folders)."),
    "devices": _string("Devices", "Devices to warm and verify by default, comma-separated (e.g. CPU,GPU).", "CPU"),
    "transport": _string(
        "Transport",
        "How the host is reached: local (the worker is the host) or ssh (through the SSH connection below).",
        "local",
        enum=["local", "ssh"],
    ),
    "ssh_conn_id": _string("SSH connection id", "For transport ssh: an SSH connection (conn type ssh) to the host."),
    "agent_command": _string(
        "Agent command",
        "The ovcache agent's command line on the host. Default: this worker's Python for local, 'ovcache' for ssh.",
    ),
    "serving_config": _string("Serving config", "Optional serving config (TOML or JSON) on the host with per-model cache specs."),
    "profile": _string(
        "Serving profile",
        "How the server compiles: openvino (compile_model by path or model), python (its own loader), "
        "optimum (optimum-intel's from_pretrained, with a model class) or genai (OpenVINO GenAI's LLMPipeline). "
        "For OpenVINO Model Server set the OVMS config instead.",
        "openvino",
        # core.profile_options.NAMED_PROFILES, written out: this module imports nothing of the package.
        enum=["openvino", "python", "optimum", "genai"],
    ),
    "ovms_config": _string(
        "OVMS config.json",
        "Optional: OpenVINO Model Server's config.json on the host; its models are warmed as OVMS prepares them.",
    ),
    "ovms_path_map": _string(
        "OVMS path map",
        'Optional, with the OVMS config: where the agent finds paths OVMS sees under another mount, e.g. {"/models": "/srv/models"}.',
    ),
    "loader": _string("Python loader", "For the python profile: the server's loader, package.module:function."),
    "loader_path": _string("Loader import path", "For the python profile: a folder on the host to import the loader from."),
    "model_class": _string(
        "optimum model class",
        "For the optimum profile (required with it): the class the server loads with, e.g. OVModelForFeatureExtraction.",
    ),
    "pipeline": _string(
        "GenAI pipeline",
        "For the genai profile (optional with it): the pipeline the server constructs. Default LLMPipeline.",
    ),
    "encryption_key_conn_id": _string(
        "Encryption key connection",
        "Optional: a connection whose password is the cache encryption key (64 hex characters); sent to the agent on stdin.",
    ),
    "command_timeout": _number(
        "Command timeout (s)", "Seconds one agent command may run before it is stopped; 0 for no limit.", 3600
    ),
    "connect_timeout": _number("Connect timeout (s)", "Seconds to wait for an SSH connection.", 10),
    "connect_retries": _number(
        "Connect retries", "Retries of a failed SSH connect (refused, timed out, unreachable).", 3, "integer"
    ),
    "retry_backoff": _number("Retry backoff (s)", "First wait between connect retries; doubles each retry.", 2),
}


def _modules(*names: str) -> list[dict[str, Any]]:
    return [{"integration-name": INTEGRATION, "python-modules": [f"airflow_ovcache.{n}" for n in names]}]


def get_provider_info() -> dict[str, Any]:
    """The provider's metadata: its modules by role, the ``ovcache`` connection form, the asset URI handlers."""
    return {
        "package-name": "airflow-ovcache",
        "name": INTEGRATION,
        "description": "Warm, verify and invalidate OpenVINO model caches across a fleet of inference hosts.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.openvino.ai/",
                "tags": ["software"],
            }
        ],
        "hooks": _modules("hooks.ovcache"),
        "operators": _modules("operators.warm", "operators.verify", "operators.rewarm", "operators.invalidate"),
        "sensors": _modules("sensors.blob", "sensors.device", "sensors.model_version", "sensors.served"),
        "triggers": _modules(
            "triggers.blob", "triggers.device", "triggers.model_version", "triggers.new_version", "triggers.served"
        ),
        "connection-types": [
            {
                "hook-class-name": "airflow_ovcache.hooks.ovcache.OvcacheHook",
                "hook-name": "OpenVINO cache host",
                "connection-type": "ovcache",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "password", "port"],
                    "relabeling": {"host": "Host name (as reported)"},
                    "placeholders": {"host": "infer-03 (default: the host's own name)", "extra": '{"remote_timeout": true}'},
                },
            }
        ],
        # The UI plugin (airflow_ovcache.plugins.fleet_view) is registered only as an ``airflow.plugins``
        # entry point: Airflow loads those always, and a "plugins" entry here as well would be loaded a
        # second time when [core] lazy_discover_providers is off and reported as a plugin import error.
        "asset-uris": [
            {"schemes": ["ovmodel"], "handler": "airflow_ovcache.assets.sanitize_model_uri"},
            {"schemes": ["ovcache"], "handler": "airflow_ovcache.assets.sanitize_cache_uri"},
        ],
    }
