"""A pasted list of e-mail addresses (the team's Add members box, README: Web app), without a database."""

from __future__ import annotations

import pytest

from payroster.services.inputs import address_list


@pytest.mark.parametrize(
    "text",
    [
        "a@example.com; b@example.com",  # as Outlook copies a To line
        "a@example.com,b@example.com",
        "a@example.com b@example.com",
        "a@example.com\r\nb@example.com\n",
        'Ann Lee <a@example.com>; "Chen, Bo" <b@example.com>',
        "a@example.com;;  A@EXAMPLE.com ,\tb@example.com",  # the same address twice is one
    ],
)
def test_every_separator_outlook_and_spreadsheets_use(text: str) -> None:
    """Semicolons, commas, spaces, tabs and new lines separate; a display name's address is taken; order kept."""
    assert address_list(text) == ["a@example.com", "b@example.com"]


def test_what_is_not_an_address_is_still_listed() -> None:
    """A word that is not an address comes back as typed, for the page to say why it was not added."""
    assert address_list("a@example.com; nope") == ["a@example.com", "nope"]
