"""The mails Runlater sends, each as plain text and as HTML.

The HTML is one table layout with inline styles only (no ``<style>``, no images, no external
resources): a slate header with the name, the message, an emerald button, the link again as
text (for clients that hide buttons and for copying), and what to do if you did not ask for
it. Every colour is set on the element that carries it (background and text together), so a
dark-mode client that inverts or keeps the colours shows readable text either way. Everything
interpolated is escaped.
"""

from __future__ import annotations

import re
from html import escape

from runlater.mail.message import Mail

SLATE_900 = "#0f172a"
SLATE_600 = "#475569"
SLATE_100 = "#f1f5f9"
EMERALD_500 = "#10b981"
WHITE = "#ffffff"
FONT_STACK = (
    "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, "
    "'Noto Sans', sans-serif"
)
_SPACES = re.compile(r"\s+")


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _one_line(value: str, limit: int = 120) -> str:
    """A value fit for a subject: one line, not too long."""
    flat = _SPACES.sub(" ", value).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _check_link(link: str) -> str:
    if not link.startswith(("https://", "http://")) or any(c.isspace() for c in link):
        raise ValueError(f"a mail link must be an http(s) URL without spaces, got {link!r}")
    return link


def _text(lead: str, link: str, ignore: str) -> str:
    return f"{lead}\n\n{link}\n\n{ignore}\n\n-- \nRunlater\n"


def _html(*, title: str, paragraphs: list[str], button: str, link: str, ignore: str) -> str:
    """The branded HTML part. ``paragraphs``, ``button`` and ``ignore`` are plain text."""
    href = escape(link, quote=True)
    font = f"font-family: {FONT_STACK};"
    text_p = "".join(
        f'<p style="margin: 0 0 16px 0; {font} font-size: 16px; line-height: 24px; '
        f'color: {SLATE_900};">{escape(p)}</p>'
        for p in paragraphs
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="supported-color-schemes" content="light dark">
<title>{escape(title)}</title>
</head>
<body style="margin: 0; padding: 0; background-color: {SLATE_100}; {font}">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" \
bgcolor="{SLATE_100}" style="background-color: {SLATE_100};">
<tr><td align="center" style="padding: 24px 12px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" \
style="max-width: 560px; border-collapse: collapse;">
<tr><td bgcolor="{SLATE_900}" style="background-color: {SLATE_900}; color: {WHITE}; \
padding: 20px 28px; {font} font-size: 20px; font-weight: 700; \
border-radius: 8px 8px 0 0;">Runlater</td></tr>
<tr><td bgcolor="{WHITE}" style="background-color: {WHITE}; color: {SLATE_900}; \
padding: 28px; border-radius: 0 0 8px 8px;">
<h1 style="margin: 0 0 16px 0; {font} font-size: 22px; line-height: 30px; \
color: {SLATE_900};">{escape(title)}</h1>
{text_p}
<table role="presentation" cellpadding="0" cellspacing="0" border="0" \
style="margin: 8px 0 24px 0;"><tr>
<td bgcolor="{EMERALD_500}" style="background-color: {EMERALD_500}; border-radius: 6px;">
<a href="{href}" style="display: inline-block; padding: 12px 24px; {font} font-size: 16px; \
font-weight: 600; color: {WHITE}; background-color: {EMERALD_500}; text-decoration: none; \
border-radius: 6px;">{escape(button)}</a>
</td></tr></table>
<p style="margin: 0 0 8px 0; {font} font-size: 14px; line-height: 20px; color: {SLATE_600};">\
Or open this link:</p>
<p style="margin: 0 0 24px 0; {font} font-size: 14px; line-height: 20px; \
word-break: break-all;"><a href="{href}" style="color: {SLATE_900}; \
text-decoration: underline;">{escape(link)}</a></p>
<p style="margin: 0; {font} font-size: 14px; line-height: 20px; color: {SLATE_600};">\
{escape(ignore)}</p>
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""


def login_mail(*, to: str, link: str, minutes: int) -> Mail:
    """A sign-in link, valid ``minutes`` and once."""
    link = _check_link(link)
    lead = (
        f"Use this link to sign in to Runlater. It works once, within {_plural(minutes, 'minute')}:"
    )
    ignore = (
        "If you did not ask to sign in, ignore this mail: "
        "the link expires on its own, and nobody can sign in without it."
    )
    return Mail(
        kind="login",
        to=to,
        subject="Sign in to Runlater",
        text=_text(lead, link, ignore),
        html=_html(
            title="Sign in to Runlater",
            paragraphs=[lead.rstrip(":") + "."],
            button="Sign in",
            link=link,
            ignore=ignore,
        ),
    )


def invite_mail(
    *, to: str, link: str, organization: str, inviter: str, role: str, days: int
) -> Mail:
    """An invitation to join ``organization`` as ``role``, valid ``days`` and once."""
    link = _check_link(link)
    lead = (
        f"{inviter} invited you to join {organization} on Runlater as {role}. "
        f"Accept within {_plural(days, 'day')}:"
    )
    ignore = (
        "If you did not expect this invitation, ignore this mail: "
        "nothing happens unless you open the link."
    )
    return Mail(
        kind="invite",
        to=to,
        subject=_one_line(f"{inviter} invited you to {organization} on Runlater", 200),
        text=_text(lead, link, ignore),
        html=_html(
            title=_one_line(f"Join {organization} on Runlater"),
            paragraphs=[lead.rstrip(":") + "."],
            button="Accept the invitation",
            link=link,
            ignore=ignore,
        ),
    )


def signup_mail(*, to: str, link: str, organization: str, minutes: int) -> Mail:
    """The confirmation of a sign-up that creates ``organization``, valid ``minutes``."""
    link = _check_link(link)
    lead = (
        f"Confirm your address to create {organization} on Runlater. The link works once, "
        f"within {_plural(minutes, 'minute')}:"
    )
    ignore = (
        "If you did not sign up for Runlater, ignore this mail: "
        "no account is created unless you open the link."
    )
    return Mail(
        kind="signup",
        to=to,
        subject="Confirm your Runlater sign-up",
        text=_text(lead, link, ignore),
        html=_html(
            title="Confirm your sign-up",
            paragraphs=[lead.rstrip(":") + "."],
            button="Confirm and sign in",
            link=link,
            ignore=ignore,
        ),
    )


def notification_mail(
    *, to: str, title: str, lines: list[str], link: str, organization: str
) -> Mail:
    """A notification: what happened (``title``, ``lines``) and where to look (``link``)."""
    link = _check_link(link)
    why = (
        f"You get this mail as a recipient of {organization}'s notifications on Runlater. "
        "Change the notification channels or add a maintenance window in the dashboard."
    )
    text = "\n".join([title, "", *lines, "", link, "", why, "", "-- ", "Runlater", ""])
    return Mail(
        kind="notification",
        to=to,
        subject=_one_line(f"[{organization}] {title}", 200),
        text=text,
        html=_html(
            title=_one_line(title),
            paragraphs=lines,
            button="Open in Runlater",
            link=link,
            ignore=why,
        ),
    )
