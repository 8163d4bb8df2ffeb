"""sessions and user names: a per-account session key; user names unique whatever their case

Revision ID: 0005
Revises: 0004

- ``users.session_key``: part of every session id. Logout, a password change
  or reset and deactivation replace it, which ends the account's sessions on
  the server side. Backfilled with a random key per account.
- ``uq_users_username_lower``: a unique index on ``lower(username)``, so that
  ``Office-41`` cannot be created beside ``office-41``. Accounts that already
  clash are kept: every one but the oldest is renamed ``<name>-dup<id>`` and
  deactivated (a look-alike is what the index exists to stop); an office
  administrator can reactivate and rename it through a new account if it was
  genuine.
"""
import secrets

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

users = sa.table(
    "users",
    sa.column("id", sa.Integer),
    sa.column("username", sa.String),
    sa.column("active", sa.Boolean),
    sa.column("session_key", sa.String),
)


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_key", sa.String(length=64), nullable=True))

    conn = op.get_bind()
    for (user_id,) in conn.execute(sa.select(users.c.id)).all():
        conn.execute(users.update().where(users.c.id == user_id)
                     .values(session_key=secrets.token_urlsafe(24)))

    # Existing look-alikes: keep the oldest account of each lower-cased name.
    seen = set()
    rows = conn.execute(sa.select(users.c.id, users.c.username).order_by(users.c.id)).all()
    for user_id, username in rows:
        key = username.lower()
        if key in seen:
            conn.execute(users.update().where(users.c.id == user_id)
                         .values(username=f"{username[:50]}-dup{user_id}", active=False))
        else:
            seen.add(key)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("session_key", existing_type=sa.String(length=64), nullable=False)
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)


def downgrade():
    op.drop_index("uq_users_username_lower", table_name="users")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_key")
