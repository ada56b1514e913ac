"""Prometheus metrics of the service (prometheus-client), kept out of the domain.

instruments.py defines every metric; multiprocess.py keeps the per-run folder uvicorn's workers share;
stores.py and database.py measure the stores and the connection pool; api/metrics.py measures requests and serves
the metrics. The domain reports through ports (CacheMetrics) that app.py fills with the instruments here.
"""
