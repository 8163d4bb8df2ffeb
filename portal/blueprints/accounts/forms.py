from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from portal.models import Department, Role


def role_choices():
    return [(r.value, r.label) for r in Role]


def department_choices():
    return [("", _l("— none (office or viewer) —"))] + [(d.code, d.name) for d in Department.all()]


class MembershipForm(FlaskForm):
    unit_code = StringField(_l("Unit code"), validators=[DataRequired(), Length(max=16)])
    role = SelectField(_l("Role"), validators=[DataRequired()])
    department = SelectField(_l("Department"), validators=[Optional()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = role_choices()
        self.department.choices = department_choices()


class UserCreateForm(MembershipForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(min=2, max=64)])
    display_name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=100)])
    password = PasswordField(_l("Initial password"), validators=[DataRequired(), Length(max=256)])


class PasswordResetForm(FlaskForm):
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=256)])
