"""Alembic environment: runs migrations on the engine handed over in ``config.attributes``."""

from alembic import context

from nexus.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from nexus.store.db import make_engine

        engine = make_engine(config.get_main_option("sqlalchemy.url"), create_dirs=True)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations_online()
