"""metric figures by metric and period: one index for a metric's figures across units

Revision ID: 0015
Revises: 0014

Reporting completeness (报送情况) reads ``reports.expected`` and ``reports.received`` of a
period for every unit of a subtree. The primary key ``(unit_id, metric, period)`` leads
with the unit, so on the Henan-scale year PostgreSQL looked the figures up unit by unit
(2,785 index probes, ~32,000 buffers, 118 ms for the province).
``ix_metric_values_metric_period (metric, period, unit_id)`` reads the two metrics' 5,572
figures in one range (~5,500 buffers, 22 ms).
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("metric_values", schema=None) as batch_op:
        batch_op.create_index("ix_metric_values_metric_period", ["metric", "period", "unit_id"], unique=False)


def downgrade():
    with op.batch_alter_table("metric_values", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_values_metric_period")
