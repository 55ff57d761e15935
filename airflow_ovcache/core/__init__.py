"""The host agent's core: repository, fingerprint, manifest, warm, verify, invalidate.

Imports neither Airflow nor (at import time) OpenVINO, so it installs and runs on
an inference host with ``openvino`` alone.
"""
