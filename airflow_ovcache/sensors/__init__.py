"""sensors of the airflow-ovcache provider."""
