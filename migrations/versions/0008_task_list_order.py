"""task list order: the unit's code on each task, and one index for the lists' order

Revision ID: 0008
Revises: 0007

The supervision lists (pages, Excel, API) order by (due date, unit code, id).
With the code on the unit only, PostgreSQL had to read and sort a whole
due-date group across the join (every instance of a cascaded task shares its
root's due date: 2,786 rows) to show 20. ``tasks.unit_code`` (a copy: codes
never change) and ``ix_tasks_list_order (due_date, unit_code, id)`` let it
read the first page straight from the index. The index replaces
``ix_tasks_due_date``, whose column it leads with.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

tasks = sa.table("tasks", sa.column("unit_id", sa.Integer), sa.column("unit_code", sa.String))
units = sa.table("units", sa.column("id", sa.Integer), sa.column("code", sa.String))


def upgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit_code", sa.String(length=16), nullable=True))
    op.execute(tasks.update().values(
        unit_code=sa.select(units.c.code).where(units.c.id == tasks.c.unit_id).scalar_subquery()))
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.alter_column("unit_code", existing_type=sa.String(length=16), nullable=False)
        batch_op.drop_index(batch_op.f("ix_tasks_due_date"))
        batch_op.create_index("ix_tasks_list_order", ["due_date", "unit_code", "id"], unique=False)


def downgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_list_order")
        batch_op.create_index(batch_op.f("ix_tasks_due_date"), ["due_date"], unique=False)
        batch_op.drop_column("unit_code")
