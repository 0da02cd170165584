"""Celery workers that run compression jobs one pipeline stage at a time.

Every task takes only a job id, re-reads the job from the database, checks that the work is
still to do, runs one ``uniql.pipeline`` stage and records the result.
"""
