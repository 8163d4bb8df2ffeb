"""SQLAlchemy models, one module per domain module."""
from portal.models.units import Department, DepartmentAgency, Unit, TIERS, agency_names  # noqa: F401
from portal.models.accounts import ApiToken, Membership, Role, User  # noqa: F401
from portal.models.audit import AuditLog  # noqa: F401
from portal.models.notifications import Notification  # noqa: F401
from portal.models.meetings import (  # noqa: F401
    AgendaItem, Attendance, AttendanceStatus, Decision, DecisionStatus, ItemKind, ItemStatus, Material,
    Meeting, MeetingInvitation, MeetingStatus, MeetingUnitInvitation, Minutes, MinutesRevision,
)
from portal.models.tasks import (  # noqa: F401
    OPEN_STATES, CascadeRun, SupervisionNotice, Task, TaskEvidence, TaskReport, TaskReview, TaskStatus,
)
from portal.models.jobs import OutboxJob  # noqa: F401
from portal.models.metrics import MetricReconcile, MetricState, MetricValue  # noqa: F401
from portal.models.activities import (  # noqa: F401
    CATEGORY_CODES, Activity, ActivityCategory, ActivityFile, ActivityVolunteer, TeamMember,
)
from portal.models.briefings import BRIEFING_STATES, Briefing  # noqa: F401
from portal.models.file_jobs import FILE_JOB_KINDS, FILE_JOB_STATES, FileJob  # noqa: F401
