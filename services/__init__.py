"""Cloud service of uniql: REST API, registry, auth and the database behind them.

The service never runs compression itself; it queues jobs for the Celery workers in ``workers``.
"""
