"""activity register and work teams: the category catalogue, activities with their files and
named volunteers, and the units' team rosters

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = "0008"
branch_labels = None
depends_on = None

categories = sa.table(
    "activity_categories",
    sa.column("code", sa.String),
    sa.column("name_zh", sa.String),
    sa.column("name_en", sa.String),
    sa.column("position", sa.Integer),
)

#: The catalogue of activity categories (docs/domain.md, "Plans, activities, assessment").
CATALOGUE = [
    ("moral", "思想道德教育", "Ideological and moral education"),
    ("legal", "法治教育", "Legal education"),
    ("skills", "技能和科普培训", "Skills and science training"),
    ("festival", "节日纪念活动", "Festival and memorial events"),
    ("care", "关爱帮扶", "Care and assistance"),
    ("volunteer", "志愿服务", "Volunteer service"),
    ("elder", "老年教育", "Elder education"),
    ("family", "家庭教育", "Family education"),
    ("other", "其他", "Other"),
]


def upgrade():
    op.create_table('activity_categories',
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=64), nullable=False),
    sa.Column('name_en', sa.String(length=128), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_activity_categories'))
    )
    op.create_table('team_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('joined_on', sa.Date(), nullable=False),
    sa.Column('left_on', sa.Date(), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_team_members_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_members'))
    )
    with op.batch_alter_table('team_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_members_unit_id'), ['unit_id'], unique=False)

    op.create_table('activities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('category_code', sa.String(length=32), nullable=False),
    sa.Column('department_code', sa.String(length=32), nullable=False),
    sa.Column('co_department_codes', sa.JSON(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('youth', sa.Integer(), nullable=False),
    sa.Column('elders', sa.Integer(), nullable=False),
    sa.Column('others', sa.Integer(), nullable=False),
    sa.Column('person_times', sa.Integer(), nullable=False),
    sa.Column('volunteers', sa.Integer(), nullable=False),
    sa.Column('volunteer_hours', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('funds', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('donated_goods', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('narrative', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['category_code'], ['activity_categories.code'], name=op.f('fk_activities_category_code_activity_categories')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_activities_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['department_code'], ['departments.code'], name=op.f('fk_activities_department_code_departments')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_activities_unit_id_units')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_activities_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities'))
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activities_category_code'), ['category_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_department_code'), ['department_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_start_date'), ['start_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_unit_id'), ['unit_id'], unique=False)

    op.create_table('activity_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('is_photo', sa.Boolean(), nullable=False),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('thumb_name', sa.String(length=64), nullable=True),
    sa.Column('content_type', sa.String(length=128), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name=op.f('fk_activity_files_activity_id_activities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_activity_files_uploaded_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_files')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_activity_files_stored_name'))
    )
    with op.batch_alter_table('activity_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_files_activity_id'), ['activity_id'], unique=False)

    op.create_table('activity_volunteers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('hours', sa.Numeric(precision=8, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name=op.f('fk_activity_volunteers_activity_id_activities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['team_members.id'], name=op.f('fk_activity_volunteers_member_id_team_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_volunteers'))
    )
    with op.batch_alter_table('activity_volunteers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_volunteers_activity_id'), ['activity_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_volunteers_member_id'), ['member_id'], unique=False)

    op.bulk_insert(categories, [{"code": code, "name_zh": zh, "name_en": en, "position": i}
                                for i, (code, zh, en) in enumerate(CATALOGUE, start=1)])


def downgrade():
    with op.batch_alter_table('activity_volunteers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_volunteers_member_id'))
        batch_op.drop_index(batch_op.f('ix_activity_volunteers_activity_id'))

    op.drop_table('activity_volunteers')
    with op.batch_alter_table('activity_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_files_activity_id'))

    op.drop_table('activity_files')
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activities_unit_id'))
        batch_op.drop_index(batch_op.f('ix_activities_start_date'))
        batch_op.drop_index(batch_op.f('ix_activities_department_code'))
        batch_op.drop_index(batch_op.f('ix_activities_category_code'))

    op.drop_table('activities')
    with op.batch_alter_table('team_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_members_unit_id'))

    op.drop_table('team_members')
    op.drop_table('activity_categories')
