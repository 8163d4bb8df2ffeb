"""task targets counted from activities: a category, a measure and optionally the organising department

Revision ID: 0012
Revises: 0011

A task whose ``counted_category`` is set has its actual value counted from the
activity register of its unit (``counted_measure``: count, person_times,
volunteer_hours or funds; ``counted_department``: only activities that
department organised), instead of typed in a progress report.
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("counted_category", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("counted_measure", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("counted_department", sa.String(length=32), nullable=True))
        batch_op.create_foreign_key("fk_tasks_counted_category_activity_categories", "activity_categories",
                                    ["counted_category"], ["code"])
        batch_op.create_foreign_key("fk_tasks_counted_department_departments", "departments",
                                    ["counted_department"], ["code"])


def downgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint("fk_tasks_counted_department_departments", type_="foreignkey")
        batch_op.drop_constraint("fk_tasks_counted_category_activity_categories", type_="foreignkey")
        batch_op.drop_column("counted_department")
        batch_op.drop_column("counted_measure")
        batch_op.drop_column("counted_category")
