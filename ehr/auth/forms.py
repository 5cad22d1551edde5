"""The login pages' forms. Every form carries the CSRF token (Flask-WTF)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length


class LoginForm(FlaskForm):
    login = StringField(_l("Tên đăng nhập hoặc số CCCD"), validators=[DataRequired(), Length(max=256)])
    password = PasswordField(_l("Mật khẩu"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class CodeForm(FlaskForm):
    code = StringField(_l("Mã xác thực 6 chữ số"), validators=[DataRequired(), Length(max=16)])


class ActivateForm(FlaskForm):
    login = StringField(_l("Tên đăng nhập hoặc số CCCD"), validators=[DataRequired(), Length(max=256)])
    code = StringField(_l("Mã kích hoạt"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Mật khẩu mới"), validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(_l("Nhập lại mật khẩu mới"), validators=[DataRequired(), EqualTo("password")])


class PasswordChangeForm(FlaskForm):
    current = PasswordField(_l("Mật khẩu hiện tại"), validators=[DataRequired(), Length(max=1024)])
    password = PasswordField(_l("Mật khẩu mới"), validators=[DataRequired(), Length(max=1024)])
    confirm = PasswordField(_l("Nhập lại mật khẩu mới"), validators=[DataRequired(), Length(max=1024)])
