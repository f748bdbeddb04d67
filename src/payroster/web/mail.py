"""Invitation e-mails through ``PAYROSTER_SMTP_URL`` (standard library smtplib: one message, no queue)."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from payroster.config import Settings

log = logging.getLogger("payroster.mail")


def send_link(settings: Settings, to: str, workspace: str, link: str, purpose: str) -> bool:
    """E-mail an invitation or reset link; False when SMTP is not configured or the send failed (the page
    then shows the link to copy, so nothing is lost)."""
    if not settings.smtp_url:
        return False
    url = urlsplit(settings.smtp_url)
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    if purpose == "invite":
        msg["Subject"] = f"You are invited to {workspace} on PayRoster"
        msg.set_content(f"Choose your password to join {workspace}:\n\n{link}\n\nThe link works once.")
    else:
        msg["Subject"] = f"Reset your PayRoster password for {workspace}"
        msg.set_content(f"Choose a new password for {workspace}:\n\n{link}\n\nThe link works once.")
    try:
        cls = smtplib.SMTP_SSL if url.scheme == "smtps" else smtplib.SMTP
        with cls(url.hostname or "localhost", url.port or (465 if url.scheme == "smtps" else 25), timeout=10) as smtp:
            if url.scheme == "smtp+starttls":
                smtp.starttls()
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException):
        log.warning("could not e-mail the %s link to %s", purpose, to, exc_info=True)
        return False
    return True
