"""The Airflow UI plugin: the fleet reports inside Airflow (see :mod:`.fleet_view`)."""
