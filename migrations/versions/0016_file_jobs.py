"""file jobs (后台文件): large Excel downloads and uploads handled by a job

Revision ID: 0016
Revises: 0015

One row per large task list download or activity register upload: its kind, unit and
requester (the only one who may see it), the list's filters, its state and progress
(rows done of total), the stored file (the written download, or the upload waiting for
the job), an upload's outcome (rows saved, row errors) and a failure's message.
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "file_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=True),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("stored_name", sa.String(length=64), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_file_jobs_unit_id_units"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_file_jobs_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_file_jobs")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_file_jobs_stored_name")),
    )
    with op.batch_alter_table("file_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_file_jobs_unit_id"), ["unit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_file_jobs_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("file_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_file_jobs_user_id"))
        batch_op.drop_index(batch_op.f("ix_file_jobs_unit_id"))
    op.drop_table("file_jobs")
