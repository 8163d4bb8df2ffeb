"""agency names: each member department's agency at a unit (金水区教育局), with defaults from the catalogue

Revision ID: 0011
Revises: 0010

``departments.agency_template`` gives the default name at a unit ("{unit}教育局",
"中共{unit}委宣传部"); ``department_agencies`` holds the names a unit's office set.
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

departments = sa.table("departments", sa.column("code", sa.String), sa.column("agency_template", sa.String))

TEMPLATES = {
    "edu": "{unit}教育局",
    "propaganda": "中共{unit}委宣传部",
    "civil": "{unit}民政局",
    "culture": "{unit}文化广电和旅游局",
    "hrss": "{unit}人力资源和社会保障局",
    "justice": "{unit}司法局",
    "health": "{unit}卫生健康委员会",
    "agri": "{unit}农业农村局",
    "finance": "{unit}财政局",
    "sci": "{unit}科学技术协会",
    "youth": "共青团{unit}委员会",
    "union": "{unit}总工会",
    "women": "{unit}妇女联合会",
    "ggw": "{unit}关心下一代工作委员会",
    "aging": "{unit}老龄工作委员会办公室",
    "police": "{unit}公安局",
}


def upgrade():
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agency_template", sa.String(length=64), nullable=False, server_default=""))
    for code, template in TEMPLATES.items():
        op.execute(departments.update().where(departments.c.code == code).values(agency_template=template))
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.alter_column("agency_template", existing_type=sa.String(length=64), server_default=None)
    op.create_table(
        "department_agencies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("department_code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["department_code"], ["departments.code"],
                                name=op.f("fk_department_agencies_department_code_departments")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_department_agencies_unit_id_units"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_department_agencies")),
        sa.UniqueConstraint("unit_id", "department_code", name=op.f("uq_department_agencies_unit_id_department_code")),
    )


def downgrade():
    op.drop_table("department_agencies")
    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_column("agency_template")
