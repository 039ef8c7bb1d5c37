"""Each backend's connections come set up as store.db says."""

from __future__ import annotations

from sqlalchemy import Engine, text


def test_connections_are_set_up_for_their_backend(engine: Engine) -> None:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Planned for their own parameters: no generic plan outlives the table it was
            # made for (store.db).
            mode = connection.execute(text("SHOW plan_cache_mode")).scalar_one()
            assert mode == "force_custom_plan"
        else:
            assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
