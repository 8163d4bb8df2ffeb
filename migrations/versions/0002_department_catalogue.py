"""department catalogue: the 16 member departments (docs/domain.md)

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

departments = sa.table(
    "departments",
    sa.column("code", sa.String),
    sa.column("name_zh", sa.String),
    sa.column("name_en", sa.String),
    sa.column("position", sa.Integer),
)

CATALOGUE = [
    ("edu", "教育", "Education"),
    ("propaganda", "宣传", "Publicity"),
    ("civil", "民政", "Civil affairs"),
    ("culture", "文化和旅游", "Culture and tourism"),
    ("hrss", "人力资源和社会保障", "Human resources and social security"),
    ("justice", "司法", "Justice"),
    ("health", "卫生健康", "Health"),
    ("agri", "农业农村", "Agriculture and rural affairs"),
    ("finance", "财政", "Finance"),
    ("sci", "科协", "Association for science and technology"),
    ("youth", "共青团", "Communist Youth League"),
    ("union", "工会", "Trade union"),
    ("women", "妇联", "Women's federation"),
    ("ggw", "关工委", "Committee for the next generation"),
    ("aging", "老龄办", "Office on ageing"),
    ("police", "公安", "Public security"),
]


def upgrade():
    op.bulk_insert(departments, [
        {"code": code, "name_zh": zh, "name_en": en, "position": i}
        for i, (code, zh, en) in enumerate(CATALOGUE, start=1)
    ])


def downgrade():
    op.execute(departments.delete().where(departments.c.code.in_([c for c, _, _ in CATALOGUE])))
