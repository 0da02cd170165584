"""Database layer of the service: SQLAlchemy models, engine and sessions."""
