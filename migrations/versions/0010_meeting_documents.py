"""meeting documents: the notice's issue date, the calendar entry's UID and SEQUENCE

Revision ID: 0010
Revises: 0009

The notice was dated the day it was downloaded and the .ics UID came from
the request's Host header. ``meetings.notice_issued_on`` keeps the day the
notice was issued (backfilled for meetings past the draft with the day they
were created, in Beijing), ``meetings.uid`` a UUID per meeting and
``meetings.calendar_sequence`` the entry's SEQUENCE (backfilled from the row
version, which the calendar used so far, so no client sees it go back).
"""
import uuid
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

meetings = sa.table(
    "meetings",
    sa.column("id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("created_at", sa.DateTime),
    sa.column("version", sa.Integer),
    sa.column("notice_issued_on", sa.Date),
    sa.column("uid", sa.String),
    sa.column("calendar_sequence", sa.Integer),
)


def upgrade():
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notice_issued_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("uid", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("calendar_sequence", sa.Integer(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(meetings.c.id, meetings.c.status, meetings.c.created_at,
                                        meetings.c.version)).all()
    for meeting_id, status, created_at, version in rows:
        issued = (created_at + timedelta(hours=8)).date() if status != "draft" and created_at else None
        connection.execute(meetings.update().where(meetings.c.id == meeting_id).values(
            uid=str(uuid.uuid4()), calendar_sequence=max(0, (version or 1) - 1), notice_issued_on=issued))
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.alter_column("uid", existing_type=sa.String(length=36), nullable=False)
        batch_op.alter_column("calendar_sequence", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_meetings_uid"), ["uid"])


def downgrade():
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_meetings_uid"), type_="unique")
        batch_op.drop_column("calendar_sequence")
        batch_op.drop_column("uid")
        batch_op.drop_column("notice_issued_on")
