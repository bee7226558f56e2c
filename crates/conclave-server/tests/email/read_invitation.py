"""Reads one email as a mail client would, with Python's `email` package,
and the calendar invitation in it with `icalendar`; prints what a test
checks, as JSON.

    python3 read_invitation.py MESSAGE_FILE
"""

import json
import sys
from email import policy
from email.parser import BytesParser

from icalendar import Calendar


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        message = BytesParser(policy=policy.default).parse(f)
    parts = [
        {
            "type": part.get_content_type(),
            "method": part.get_param("method"),
            "filename": part.get_filename(),
        }
        for part in message.walk()
        if not part.is_multipart()
    ]
    calendar_part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    calendar = Calendar.from_ical(calendar_part.get_content())
    event = calendar.walk("VEVENT")[0]
    text = message.get_body(preferencelist=("plain",)).get_content()
    print(
        json.dumps(
            {
                "subject": str(message["subject"]),
                "to": str(message["to"]),
                "parts": parts,
                "text": text,
                "method": str(calendar["METHOD"]),
                "uid": str(event["UID"]),
                "sequence": int(event["SEQUENCE"]),
                "start": event["DTSTART"].dt.isoformat(),
                "end": event["DTEND"].dt.isoformat(),
                "summary": str(event["SUMMARY"]),
                "description": str(event["DESCRIPTION"]),
                "url": str(event["URL"]) if "URL" in event else None,
                "status": str(event["STATUS"]),
                "organizer": str(event["ORGANIZER"]),
                "attendees": [str(a) for a in (event.get("ATTENDEE") if isinstance(event.get("ATTENDEE"), list) else [event.get("ATTENDEE")])],
            }
        )
    )


if __name__ == "__main__":
    main()
