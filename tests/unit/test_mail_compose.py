"""What the mails say (text and HTML parts, escaping, the link in both) and how the SMTP URL
and the MIME message are made."""

from __future__ import annotations

import re

import pytest

from runlater.config import load_settings
from runlater.errors import ConfigError
from runlater.mail.compose import invite_mail, login_mail, signup_mail
from runlater.mail.message import Mail
from runlater.mail.smtp import SmtpServer, build_message, parse_smtp_url

LINK = "https://runlater.example.com/login/abc?x=1&y=2"
HOSTILE = '<script>alert("x")</script> & Co \'s'


def all_mails(link: str = LINK, name: str = HOSTILE) -> list[Mail]:
    return [
        login_mail(to="ada@example.test", link=link, minutes=15),
        invite_mail(
            to="ada@example.test",
            link=link,
            organization=name,
            inviter=name,
            role="admin",
            days=7,
        ),
        signup_mail(to="ada@example.test", link=link, organization=name, minutes=30),
    ]


def test_kinds_subjects_and_recipients() -> None:
    login, invite, signup = all_mails(name="Acme")
    assert (login.kind, invite.kind, signup.kind) == ("login", "invite", "signup")
    assert login.subject == "Sign in to Runlater"
    assert invite.subject == "Acme invited you to Acme on Runlater"
    assert signup.subject
    assert {m.to for m in (login, invite, signup)} == {"ada@example.test"}
    assert "15 minutes" in login.text and "7 days" in invite.text and "30 minutes" in signup.text
    assert "admin" in invite.text
    assert "1 minute:" in login_mail(to="a@b.test", link=LINK, minutes=1).text


@pytest.mark.parametrize("mail", all_mails(), ids=lambda m: m.kind)
def test_both_parts_carry_the_link_and_what_to_do_if_unasked(mail: Mail) -> None:
    assert mail.text.strip() and mail.html.strip()
    assert LINK in mail.text  # verbatim, on a line of its own
    assert LINK in mail.text.splitlines()
    escaped = LINK.replace("&", "&amp;")
    assert f'href="{escaped}"' in mail.html  # the button
    assert f">{escaped}</a>" in mail.html  # and the link as text
    assert "If you did not" in mail.text and "If you did not" in mail.html
    assert "ignore this mail" in mail.text and "ignore this mail" in mail.html


@pytest.mark.parametrize("mail", all_mails(), ids=lambda m: m.kind)
def test_html_is_escaped_branded_and_self_contained(mail: Mail) -> None:
    assert "<script>" not in mail.html
    if mail.kind != "login":
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co &#x27;s" in mail.html
        assert HOSTILE in mail.text  # plain text is not HTML: kept as written
    assert "#0f172a" in mail.html and "#10b981" in mail.html  # slate 900, emerald 500
    assert "-apple-system" in mail.html and "sans-serif" in mail.html
    assert 'name="color-scheme" content="light dark"' in mail.html
    assert "<style" not in mail.html  # inline styles only
    assert "<img" not in mail.html and "src=" not in mail.html  # nothing fetched
    # every URL in the HTML is the link
    assert set(re.findall(r'href="([^"]*)"', mail.html)) == {LINK.replace("&", "&amp;")}


def test_subjects_are_one_line() -> None:
    invite = invite_mail(
        to="a@b.test",
        link=LINK,
        organization="Evil\r\nBcc: x@y",
        inviter="B",
        role="member",
        days=7,
    )
    assert "\n" not in invite.subject and "\r" not in invite.subject
    long = invite_mail(
        to="a@b.test", link=LINK, organization="x" * 500, inviter="B", role="m", days=1
    )
    assert len(long.subject) <= 200


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "ftp://x/y", "https://x/ y", "/relative/path", ""]
)
def test_a_link_is_an_http_url(link: str) -> None:
    with pytest.raises(ValueError):
        login_mail(to="a@b.test", link=link, minutes=15)


def test_build_message_is_multipart_alternative_with_the_given_message_id() -> None:
    mail = all_mails()[1]
    msg = build_message(mail, sender="Runlater <runlater@example.com>", message_id="<1@x.test>")
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Message-ID"] == "<1@x.test>"
    assert msg["From"] == "Runlater <runlater@example.com>"
    assert msg["To"] == "ada@example.test"
    assert msg["Subject"] == mail.subject
    assert msg["Date"]
    parts = [(p.get_content_type(), p.get_content()) for p in msg.iter_parts()]
    assert [kind for kind, _ in parts] == ["text/plain", "text/html"]
    assert LINK in parts[0][1] and "#10b981" in parts[1][1]
    assert b"\r\n" in msg.as_bytes()  # SMTP line endings


def test_a_header_cannot_be_injected() -> None:
    mail = Mail(kind="login", to="a@b.test\r\nBcc: eve@x.test", subject="s", text="t", html="h")
    with pytest.raises(ValueError):
        build_message(mail, sender="r@x.test", message_id="<1@x.test>")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", SmtpServer("mail.example.com", 587, False)),
        ("smtps://mail.example.com", SmtpServer("mail.example.com", 465, True)),
        ("smtp://u:p@mail.example.com:2525", SmtpServer("mail.example.com", 2525, False, "u", "p")),
        (
            "smtps://me%40example.com:p%40ss%3Aw%2Frd@smtp.example.com:465",
            SmtpServer("smtp.example.com", 465, True, "me@example.com", "p@ss:w/rd"),
        ),
        ("smtp://apikey@mail.example.com", SmtpServer("mail.example.com", 587, False, "apikey")),
        ("smtp://u:@mail.example.com", SmtpServer("mail.example.com", 587, False, "u", "")),
        ("SMTP://Mail.Example.COM/", SmtpServer("mail.example.com", 587, False)),
        ("smtp://[::1]:25", SmtpServer("::1", 25, False)),
    ],
)
def test_smtp_url(url: str, expected: SmtpServer) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com",
        "mail.example.com:587",
        "smtp://",
        "smtp://:587",
        "smtp://mail.example.com:99999",
        "smtp://mail.example.com:abc",
        "smtp://mail.example.com:0",
        "smtp://mail.example.com/path",
        "smtp://mail.example.com?x=1",
        "smtp://:secret@mail.example.com",
        "",
    ],
)
def test_bad_smtp_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_smtp_url(url)


def test_the_password_never_shows_in_repr() -> None:
    server = parse_smtp_url("smtps://user:hunter2@mail.example.com")
    assert "hunter2" not in repr(server) and "user" in repr(server)


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com",
        "smtp://",
        "smtp://mail.example.com:99999",
        "smtp://mail.example.com:abc",
        "smtp://mail.example.com:0",
        "smtp://user:pa/ss@mail.example.com",  # an unencoded / in the password
        "smtp://mail.example.com/path",
    ],
)
def test_a_node_refuses_to_start_with_a_bad_smtp_url(url: str) -> None:
    with pytest.raises(ConfigError, match="RUNLATER_SMTP_URL"):
        load_settings({"RUNLATER_SMTP_URL": url})


def test_a_good_smtp_url_is_taken_as_given() -> None:
    url = "smtps://me%40example.com:p%40ss@smtp.example.com:465"
    assert load_settings({"RUNLATER_SMTP_URL": url}).smtp_url == url
    assert parse_smtp_url(url).password == "p@ss"
