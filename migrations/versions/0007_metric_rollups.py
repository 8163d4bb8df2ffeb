"""metric roll-ups: stored figures per unit, metric and period, the dirty markers, the reconciles

Revision ID: 0007
Revises: 0006

``metric_values`` holds the figures of the metric registry (portal/metrics/),
derived from the source rows and always rebuildable (``flask metrics
rebuild``); ``metric_state`` the per-unit dirty marker written with each
counted write; ``metric_reconciles`` what each reconcile found. The tables
start empty: ``flask --app wsgi metrics rebuild`` fills them.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "metric_values",
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("own", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("subtree", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_metric_values_unit_id_units"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("unit_id", "metric", "period", name=op.f("pk_metric_values")),
    )
    op.create_table(
        "metric_state",
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("pending_since", sa.DateTime(), nullable=True),
        sa.Column("marked_at", sa.DateTime(), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_metric_state_unit_id_units"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_metric_state")),
    )
    op.create_table(
        "metric_reconciles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("seconds", sa.Numeric(precision=10, scale=3), nullable=False),
        sa.Column("figures", sa.Integer(), nullable=False),
        sa.Column("drifted", sa.Integer(), nullable=False),
        sa.Column("dirty_units", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_reconciles")),
    )
    with op.batch_alter_table("metric_reconciles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_metric_reconciles_at"), ["at"], unique=False)


def downgrade():
    with op.batch_alter_table("metric_reconciles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_metric_reconciles_at"))
    op.drop_table("metric_reconciles")
    op.drop_table("metric_state")
    op.drop_table("metric_values")
