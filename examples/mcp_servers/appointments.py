"""Demo MCP server: Acme Home Services' booking system (list open slots, book, cancel).

Run over stdio (what Backline's gateway spawns by default) or streamable HTTP:

    python examples/mcp_servers/appointments.py                 # stdio
    python examples/mcp_servers/appointments.py --http 8765     # http://127.0.0.1:8765/mcp

State lives in memory and is lost when the process exits; ``--delay`` adds latency to every
call, to see the gateway's deadline and fallback at work. Written with the official MCP Python
SDK (v2, ``MCPServer``); it never logs a caller's name or number.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
from datetime import UTC, datetime, time, timedelta

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

TECHNICIANS = ("Sam (plumbing)", "Ria (electrical)", "Lee (HVAC)")
DAYS_AHEAD = 5
HOURS = (9, 11, 13, 15)


class Slot(BaseModel):
    slot_id: str
    start: str = Field(description="ISO 8601 start time (UTC)")
    technician: str


class SlotList(BaseModel):
    slots: list[Slot]


class Booking(BaseModel):
    booking_id: str
    slot_id: str
    start: str
    technician: str
    status: str


def _initial_slots(today: datetime) -> dict[str, Slot]:
    slots: dict[str, Slot] = {}
    for day in range(1, DAYS_AHEAD + 1):
        date = (today + timedelta(days=day)).date()
        for i, hour in enumerate(HOURS):
            start = datetime.combine(date, time(hour), tzinfo=UTC)
            slot_id = f"{date:%Y%m%d}-{hour:02d}"
            slots[slot_id] = Slot(
                slot_id=slot_id,
                start=start.isoformat(),
                technician=TECHNICIANS[(day + i) % len(TECHNICIANS)],
            )
    return slots


def build_server(delay_s: float = 0.0) -> MCPServer:
    server = MCPServer(
        "appointments",
        instructions="Acme Home Services' booking system: open slots, bookings, cancellations.",
    )
    open_slots = _initial_slots(datetime.now(UTC))
    bookings: dict[str, Booking] = {}

    async def pause() -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)

    @server.tool(
        title="List open appointment slots",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    async def list_slots(
        date: str | None = Field(default=None, description="Only this day, YYYY-MM-DD"),
        limit: int = Field(default=5, ge=1, le=20, description="At most this many slots"),
    ) -> SlotList:
        """List open technician appointment slots, earliest first."""
        await pause()
        slots = sorted(open_slots.values(), key=lambda s: s.start)
        if date:
            slots = [s for s in slots if s.start.startswith(date)]
        return SlotList(slots=slots[:limit])

    @server.tool(
        title="Book an appointment",
        annotations=ToolAnnotations(destructive_hint=False, idempotent_hint=False),
    )
    async def book_slot(
        slot_id: str = Field(description="A slot_id from list_slots"),
        customer_name: str = Field(min_length=1, description="Who the booking is for"),
        phone_number: str | None = Field(default=None, description="Callback number"),
        reason: str = Field(default="", description="What needs fixing, in a few words"),
    ) -> Booking:
        """Book an open slot for the caller; answers the confirmed booking."""
        await pause()
        slot = open_slots.pop(slot_id, None)
        if slot is None:
            raise ToolError(
                f"Slot {slot_id} is not open (already booked or unknown); list slots again."
            )
        booking = Booking(
            booking_id=f"B-{secrets.token_hex(3).upper()}",
            slot_id=slot.slot_id,
            start=slot.start,
            technician=slot.technician,
            status="confirmed",
        )
        bookings[booking.booking_id] = booking
        return booking

    @server.tool(
        title="Cancel a booking",
        annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True),
    )
    async def cancel_booking(
        booking_id: str = Field(description="The booking id, e.g. B-1A2B3C"),
    ) -> Booking:
        """Cancel a booking and reopen its slot; cancelling twice is harmless."""
        await pause()
        booking = bookings.get(booking_id)
        if booking is None:
            raise ToolError(f"There is no booking {booking_id}.")
        if booking.status != "cancelled":
            booking.status = "cancelled"
            open_slots[booking.slot_id] = Slot(
                slot_id=booking.slot_id, start=booking.start, technician=booking.technician
            )
        return booking

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every call")
    args = parser.parse_args()
    server = build_server(args.delay)
    if args.http:
        server.run("streamable-http", host=args.host, port=args.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
