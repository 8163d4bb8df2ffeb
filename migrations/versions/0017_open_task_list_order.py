"""open tasks in list order: one partial index for the overdue and due-soon lists

Revision ID: 0017
Revises: 0016

The supervision list filtered to the overdue tasks (open and past due) or to those due
within some days reads the open tasks in the list's order (due date, unit code, id). On
``ix_tasks_list_order`` every task of the due dates passed is visited and its state read
from the table (at the province, 44,000 of 146,000 tasks are overdue and as many closed),
and the capped count of the list read 32,000 rows to count 10,001. ``ix_tasks_open_list_order``
holds only the open tasks (the states of ``portal.models.tasks.OPEN_STATES``, written out
here as the queries write them: the planner matches the predicate) in the same order.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('assigned', 'in_progress', 'submitted', 'returned')")


def upgrade():
    op.create_index("ix_tasks_open_list_order", "tasks", ["due_date", "unit_code", "id"], unique=False,
                    postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade():
    op.drop_index("ix_tasks_open_list_order", table_name="tasks")
