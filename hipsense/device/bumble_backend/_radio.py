"""The virtual radio: one LocalLink, one central Bumble device shared by scanners and clients."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from bumble.controller import Controller
from bumble.device import Advertisement, Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

if TYPE_CHECKING:
    from hipsense.device.bumble_backend.client import BumbleClient
    from hipsense.device.bumble_backend.scanner import BumbleScanner

logger = logging.getLogger(__name__)

__all__ = ["VirtualRadio", "create_device"]

DEFAULT_CENTRAL_ADDRESS = "C0:FF:EE:00:00:01"


def create_device(link: LocalLink, name: str, address: str) -> Device:
    """A Bumble device (host + emulated controller) attached to ``link``; not powered yet.

    ``address`` becomes the device's random static address, which is what it advertises and
    what a central connects to.
    """
    controller = Controller(name, link=link, public_address=address)
    return Device(name=name, address=Address(address), host=Host(controller, AsyncPipeSink(controller)))


class VirtualRadio:
    """A virtual Bluetooth adapter and the air around it.

    Holds a :class:`~bumble.link.LocalLink` that emulated peripherals join, and a central Bumble
    device that plays the part of the Pi's adapter. Like a real adapter it is shared: any number
    of scanners may run at once (the radio scans while at least one is active), and connections
    are created one at a time, as BlueZ does.

    Create it inside a running event loop's lifetime; it needs no closing beyond
    :meth:`close`, which powers the central off.

    Attributes
    ----------
    link
        The shared virtual link; pass it to peripherals.
    """

    def __init__(self, central_address: str = DEFAULT_CENTRAL_ADDRESS) -> None:
        self.link = LocalLink()
        self._central_address = central_address
        self._central: Device | None = None
        self._power_lock = asyncio.Lock()
        self.connect_lock = asyncio.Lock()
        self._scan_listeners: set[Callable[[Advertisement], None]] = set()
        self._scan_lock = asyncio.Lock()
        self._scanner_backend: type[BumbleScanner] | None = None
        self._client_backend: type[BumbleClient] | None = None

    async def central(self) -> Device:
        """The powered-on central device (created on first use)."""
        async with self._power_lock:
            if self._central is None:
                device = create_device(self.link, "hipsense-central", self._central_address)
                device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
                await device.power_on()
                self._central = device
            return self._central

    def create_device(self, name: str, address: str) -> Device:
        """A new (unpowered) Bumble device on this radio's link, e.g. for a peripheral."""
        return create_device(self.link, name, address)

    @property
    def scanner_backend(self) -> type[BumbleScanner]:
        """A :class:`BumbleScanner` subclass bound to this radio, for ``BleakScanner(backend=…)``."""
        if self._scanner_backend is None:
            from hipsense.device.bumble_backend.scanner import BumbleScanner

            self._scanner_backend = type("BumbleScanner", (BumbleScanner,), {"radio": self})
        return self._scanner_backend

    @property
    def client_backend(self) -> type[BumbleClient]:
        """A :class:`BumbleClient` subclass bound to this radio, for ``BleakClient(backend=…)``."""
        if self._client_backend is None:
            from hipsense.device.bumble_backend.client import BumbleClient

            self._client_backend = type("BumbleClient", (BumbleClient,), {"radio": self})
        return self._client_backend

    async def add_scan_listener(self, listener: Callable[[Advertisement], None]) -> None:
        """Start delivering advertisements to ``listener``; scanning starts with the first one."""
        central = await self.central()
        async with self._scan_lock:
            self._scan_listeners.add(listener)
            if not central.is_scanning:
                await central.start_scanning(filter_duplicates=False)

    async def remove_scan_listener(self, listener: Callable[[Advertisement], None]) -> None:
        """Stop delivering to ``listener``; scanning stops when no listener is left."""
        central = await self.central()
        async with self._scan_lock:
            self._scan_listeners.discard(listener)
            if not self._scan_listeners and central.is_scanning:
                await central.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        for listener in tuple(self._scan_listeners):
            listener(advertisement)

    async def close(self) -> None:
        """Power the central off (peripherals are closed by their owners)."""
        if self._central is not None:
            await self._central.power_off()
            self._central = None
