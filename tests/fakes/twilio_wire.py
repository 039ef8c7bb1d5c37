"""Twilio REST wire format for the fake: error JSON, Message resources, webhook forms."""

from __future__ import annotations

import math
import re
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from tests.fakes.server import Response, json_response

API_VERSION = "2010-04-01"
E164 = re.compile(r"\+[1-9]\d{6,14}")
MAX_BODY_CHARS = 1600

# code -> (HTTP status, message), as Twilio answers them.
ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
    20503: (503, "Service unavailable"),
    21211: (400, "Invalid 'To' Phone Number"),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
}
DEFAULT_CODES = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")  # two septets each (escape + char)


def error(code: int, *, status: int | None = None, message: str | None = None) -> Response:
    """Twilio's error JSON {code, message, more_info, status}."""
    known_status, known_message = ERRORS.get(code, (400, "Error"))
    status = status or known_status
    return json_response(
        status,
        {
            "code": code,
            "message": message or known_message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


def segments(body: str) -> int:
    """SMS segments: GSM-7 160 septets (153 when split), else UCS-2 70 units (67 when split)."""
    if set(body) <= GSM7_BASIC | GSM7_EXTENSION:
        septets = len(body) + sum(char in GSM7_EXTENSION for char in body)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def create_problem(params: dict[str, Any], *, opted_out: bool) -> Response | None:
    """The error Twilio answers a Messages.json create with, if any (rate limits aside)."""
    to = str(params.get("To", ""))
    body = str(params.get("Body", ""))
    if not to:
        return error(21604)
    if not E164.fullmatch(to):
        return error(21211, message=f"Invalid 'To' Phone Number: {to}")
    if not params.get("From") and not params.get("MessagingServiceSid"):
        return error(21603)
    if not body and not params.get("MediaUrl"):
        return error(21602)
    if len(body) > MAX_BODY_CHARS:
        return error(21617)
    if opted_out:
        return error(21610)
    return None


def message_resource(
    sid: str, account_sid: str, params: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The Message resource a create answers (201): queued, or accepted via a service."""
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
    service_only = params.get("MessagingServiceSid") and not params.get("From")
    body = str(params.get("Body", ""))
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": format_datetime(now),
        "date_sent": None,
        "date_updated": format_datetime(now),
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": params.get("From"),
        "messaging_service_sid": params.get("MessagingServiceSid"),
        "num_media": "0",
        "num_segments": str(segments(body)),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if service_only else "queued",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": params.get("To"),
        "uri": f"{uri}.json",
    }


def inbound_form(*, account_sid: str, sid: str, from_: str, to: str, body: str) -> dict[str, str]:
    """The form Twilio POSTs to a number's messaging webhook for an incoming SMS."""
    return {
        "ToCountry": "US",
        "ToState": "",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "",
        "SmsStatus": "received",
        "FromCity": "",
        "Body": body,
        "FromCountry": "US",
        "To": to,
        "ToZip": "",
        "NumSegments": str(segments(body)),
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "ApiVersion": API_VERSION,
    }


def status_form(
    resource: dict[str, Any], status: str, error_code: int | None, *, from_: str
) -> dict[str, str]:
    """The form Twilio POSTs to a message's StatusCallback."""
    form = {
        "AccountSid": str(resource["account_sid"]),
        "ApiVersion": API_VERSION,
        "From": from_,
        "MessageSid": str(resource["sid"]),
        "MessageStatus": status,
        "SmsSid": str(resource["sid"]),
        "SmsStatus": status,
        "To": str(resource["to"]),
    }
    if resource.get("messaging_service_sid"):
        form["MessagingServiceSid"] = str(resource["messaging_service_sid"])
    if error_code is not None:
        form["ErrorCode"] = str(error_code)
    return form
