"""task children in unit order: one index for a task's instances below it, by unit code

Revision ID: 0014
Revises: 0013

A task's page and the API list a task's child instances by unit code, 100 at a time,
and count them by state. A provincial task passed to all 2,586 streets has 2,586
children: with ``ix_tasks_parent_id (parent_id)`` alone PostgreSQL fetched them all
and sorted them to show 100. ``ix_tasks_parent_order (parent_id, unit_code, id)``
gives them in the page's order (``tasks.unit_code`` is the unit's code, copied by
0008); it replaces ``ix_tasks_parent_id``, whose column it leads with (the roll-up,
the cascade and the cancel look children up by it just as well).
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_parent_order", ["parent_id", "unit_code", "id"], unique=False)
        batch_op.drop_index(batch_op.f("ix_tasks_parent_id"))


def downgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_parent_id"), ["parent_id"], unique=False)
        batch_op.drop_index("ix_tasks_parent_order")
