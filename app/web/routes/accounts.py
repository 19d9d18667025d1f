"""Sign-up, sign-in, sign-out, profile and password pages. Thin: the services do the work."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromQuery, MultipartBody, URLEncodedBody
from litestar.response import Redirect, Template

from app.errors import UserError
from app.services import accounts, avatars, ratelimit, sessions
from app.services.accounts import User
from app.web.deps import (
    CtxDep,
    ViewerDep,
    form_text,
    ip_of,
    page,
    require,
    safe_next,
    see_other,
    session_cookie,
)

INCOMPLETE = "The form arrived incomplete, so nothing was changed. Reload the page and try again."
WRONG_LOGIN = "That username and password don't match. Check them and try again."


@get("/signup", sync_to_thread=True)
def signup_form(ctx: CtxDep, viewer: ViewerDep, invite: FromQuery[str] = "") -> Template | Redirect:
    if viewer:
        return see_other("/")
    return page("accounts/signup.html", mode=ctx.config.accounts.registration, form={"invite": invite[:64]})


@post("/signup", sync_to_thread=True)
def signup(request: Request, ctx: CtxDep, data: URLEncodedBody[dict[str, Any]]) -> Template | Redirect:
    form = {k: form_text(data, k, 4096) for k in ("username", "password", "invite")}
    try:
        ratelimit.limit(ctx, "signup-ip", ip_of(request), ctx.config.limits.signup_per_ip)
        user = accounts.create_user(ctx, form["username"], form["password"], invite_code=form["invite"])
    except UserError as exc:
        form.pop("password")
        return page("accounts/signup.html", exc.status, mode=ctx.config.accounts.registration, form=form, error=exc)
    sessions.end_session(ctx, request.cookies.get(sessions.COOKIE))  # signed in as someone else before
    return see_other("/settings/profile?welcome=1", [session_cookie(ctx, sessions.start_session(ctx, user))])


@get("/login", sync_to_thread=True)
def login_form(viewer: ViewerDep, next: FromQuery[str] = "/") -> Template | Redirect:
    if viewer:
        return see_other(safe_next(next))
    return page("accounts/login.html", form={"next": safe_next(next)})


@post("/login", sync_to_thread=True)
def login(request: Request, ctx: CtxDep, data: URLEncodedBody[dict[str, Any]]) -> Template | Redirect:
    form = {"username": form_text(data, "username", 64), "next": safe_next(form_text(data, "next", 4096))}
    limits = ctx.config.limits
    try:
        ratelimit.limit(ctx, "login-ip", ip_of(request), limits.login_per_ip)
        # Counted per account as sign-in finds it, so "@ana" or "@@ANA" is no fresh allowance for "ana".
        account = accounts.canonical_username(form["username"])
        ratelimit.limit(ctx, "login-account", account, limits.login_per_account)
        user = accounts.authenticate(ctx, form["username"], form_text(data, "password", 2048))
        if user is None:
            raise UserError(WRONG_LOGIN, status=401)
    except UserError as exc:
        return page("accounts/login.html", exc.status, form=form, error=exc)
    # A new token at every sign-in: a token planted before login is never promoted.
    sessions.end_session(ctx, request.cookies.get(sessions.COOKIE))
    return see_other(form["next"], [session_cookie(ctx, sessions.start_session(ctx, user))])


@post("/logout", sync_to_thread=True)
def logout(request: Request, ctx: CtxDep) -> Redirect:
    sessions.end_session(ctx, request.cookies.get(sessions.COOKIE))
    return see_other("/", [session_cookie(ctx, None)])


@get("/settings/profile", sync_to_thread=True)
def profile_form(viewer: ViewerDep, welcome: FromQuery[bool] = False) -> Template:
    user = require(viewer)
    return page("accounts/profile.html", user=user, form=_profile_form(user), welcome=welcome)


def _profile_form(user: User) -> dict[str, Any]:
    return {"display_name": user.display_name, "bio": user.bio, "is_private": user.is_private}


@post("/settings/profile", sync_to_thread=True)
def profile_save(ctx: CtxDep, viewer: ViewerDep, data: URLEncodedBody[dict[str, Any]]) -> Template | Redirect:
    user = require(viewer)
    if "display_name" not in data or "bio" not in data:
        # A form that lost its fields must not blank the profile.
        return page("accounts/profile.html", 400, user=user, form=_profile_form(user), error=UserError(INCOMPLETE))
    form = {
        "display_name": form_text(data, "display_name", 4096),
        "bio": form_text(data, "bio", 4096),
        "is_private": form_text(data, "is_private") == "on",
    }
    try:
        accounts.update_profile(ctx, user, form["display_name"], form["bio"], form["is_private"])
    except UserError as exc:
        return page("accounts/profile.html", exc.status, user=user, form=form, error=exc)
    return see_other("/settings/profile?saved=1")


@post("/settings/avatar", sync_to_thread=True)
def avatar_upload(ctx: CtxDep, viewer: ViewerDep, data: MultipartBody[dict[str, Any]]) -> Template | Redirect:
    user = require(viewer)
    upload = data.get("avatar")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise UserError("Choose a photo to upload.", field="avatar")
        limit = ctx.config.media.max_upload_mb * 1024 * 1024
        avatars.upload_avatar(ctx, user, upload.file.read(limit + 1))
    except UserError as exc:
        return page("accounts/profile.html", exc.status, user=user, form=_profile_form(user), error=exc)
    return see_other("/settings/profile")


@post("/settings/avatar/remove", sync_to_thread=True)
def avatar_remove(ctx: CtxDep, viewer: ViewerDep) -> Redirect:
    avatars.remove_avatar(ctx, require(viewer))
    return see_other("/settings/profile")


@get("/settings/password", sync_to_thread=True)
def password_form(viewer: ViewerDep) -> Template:
    return page("accounts/password.html", user=require(viewer))


@post("/settings/password", sync_to_thread=True)
def password_change(
    request: Request, ctx: CtxDep, viewer: ViewerDep, data: URLEncodedBody[dict[str, Any]]
) -> Template | Redirect:
    user = require(viewer)
    try:
        ratelimit.limit(ctx, "password-account", str(user.id), ctx.config.limits.password_per_account)
        user = accounts.change_password(
            ctx, user, form_text(data, "current_password", 2048), form_text(data, "new_password", 2048)
        )
    except UserError as exc:
        return page("accounts/password.html", exc.status, user=user, error=exc)
    # Every session ended with the epoch bump; this browser continues in a new one.
    sessions.end_session(ctx, request.cookies.get(sessions.COOKIE))
    return see_other("/settings/password?changed=1", [session_cookie(ctx, sessions.start_session(ctx, user))])


@get("/settings/invites", sync_to_thread=True)
def invites_page(ctx: CtxDep, viewer: ViewerDep) -> Template:
    user = require(viewer)
    if not user.is_admin:
        raise UserError("Only admins can make invite codes.", status=403)
    return page("accounts/invites.html", user=user, mode=ctx.config.accounts.registration)


@post("/settings/invites", sync_to_thread=True)
def invite_create(ctx: CtxDep, viewer: ViewerDep) -> Template:
    user = require(viewer)
    if not user.is_admin:
        raise UserError("Only admins can make invite codes.", status=403)
    code = accounts.create_invite(ctx, user.id)
    return page(
        "accounts/invites.html",
        user=user,
        mode=ctx.config.accounts.registration,
        code=code,
        link=f"{ctx.config.public_url}/signup?invite={code}",
    )


router = Router(
    path="/",
    route_handlers=[
        signup_form,
        signup,
        login_form,
        login,
        logout,
        profile_form,
        profile_save,
        avatar_upload,
        avatar_remove,
        password_form,
        password_change,
        invites_page,
        invite_create,
    ],
)
