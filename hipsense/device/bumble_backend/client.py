"""``BaseBleakClient`` on Bumble: connect, discover, read, write and notify over the virtual radio.

Errors are raised as bleak's own backends raise them (``TimeoutError``, ``BleakError``,
``BleakGATTProtocolError``, ``BleakDeviceNotFoundError``), so the code above bleak handles
the emulator and BlueZ alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES, CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import core
from bumble.att import ATT_Error
from bumble.device import Connection, Peer
from bumble.hci import Address

from hipsense.device.bumble_backend._radio import VirtualRadio
from hipsense.device.bumble_backend.scanner import uuid_string

logger = logging.getLogger(__name__)

__all__ = ["BumbleClient"]

T = TypeVar("T")

_DEFAULT_MTU = 23
_REQUESTED_MTU = 247  # what BlueZ typically ends up with; the peripheral may answer less
_HCI_REMOTE_USER_TERMINATED = 0x13


def _property_names(bits: int) -> list[CharacteristicPropertyName]:
    return [name for bit, name in CHARACTERISTIC_PROPERTIES.items() if bits & bit]


class BumbleClient(BaseBleakClient):
    """Client backend bound to a :class:`VirtualRadio` (use ``radio.client_backend``).

    ``pair`` is accepted and ignored (the emulated sensors need no bonding), as bleak's contract
    allows for backends that cannot pair.
    """

    radio: ClassVar[VirtualRadio]

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs.pop("disconnected_callback", None),
            timeout=kwargs.pop("timeout", 30.0),
            **kwargs,
        )
        if isinstance(address_or_ble_device, BLEDevice):
            self._name = address_or_ble_device.name or address_or_ble_device.address
            details = address_or_ble_device.details
            self._peer_address = details if isinstance(details, Address) else Address(self.address)
        else:
            self._name = address_or_ble_device
            self._peer_address = Address(address_or_ble_device)
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._lost: asyncio.Future[None] | None = None
        self._closing = False
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    # -- properties ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else _DEFAULT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # -- connectivity -------------------------------------------------------------------------

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        central = await self.radio.central()
        loop = asyncio.get_running_loop()
        async with self.radio.connect_lock:
            try:
                connection = await central.connect(self._peer_address, timeout=self._timeout)
            except core.TimeoutError as exc:
                raise TimeoutError(f"no answer from {self.address} within {self._timeout} s") from exc
            except core.BaseBumbleError as exc:
                raise BleakError(f"connecting to {self.address} failed: {exc}") from exc
        self._connection = connection
        self._lost = loop.create_future()
        self._closing = False
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._peer = Peer(connection)
        try:
            async with asyncio.timeout(self._timeout):
                await self._guard(self._peer.request_mtu(_REQUESTED_MTU))
                await self._guard(self._peer.discover_all())
        except BaseException:
            await self.disconnect()
            raise
        self.services = self._collect_services(self._peer)
        logger.debug("connected to %s, mtu %d", self.address, self.mtu_size)

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        lost = self._lost
        try:
            await connection.disconnect(_HCI_REMOTE_USER_TERMINATED)
        except core.BaseBumbleError as exc:  # already gone: nothing left to close
            logger.debug("disconnect from %s: %s", self.address, exc)
        if lost is not None and self._connection is not None:
            await asyncio.wait([lost], timeout=self._timeout)
        self._forget_connection()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        logger.debug("pairing is not emulated; ignoring pair() for %s", self.address)

    async def unpair(self) -> None:
        logger.debug("pairing is not emulated; ignoring unpair() for %s", self.address)

    def _on_disconnection(self, reason: int) -> None:
        unsolicited = not self._closing
        lost = self._lost
        self._forget_connection()
        if lost is not None and not lost.done():
            lost.set_result(None)
        logger.debug("link to %s dropped (reason 0x%02x)", self.address, reason)
        if unsolicited and self._disconnected_callback is not None:
            self._disconnected_callback()

    def _forget_connection(self) -> None:
        self._connection = None
        self._peer = None
        self._subscribers.clear()

    # -- GATT ---------------------------------------------------------------------------------

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def _guard(self, operation: Awaitable[T]) -> T:
        """Await a GATT operation, but give up as soon as the link drops; map Bumble errors."""
        lost = self._lost
        task = asyncio.ensure_future(operation)
        if lost is None:
            task.cancel()
            raise BleakError("Not connected")
        try:
            done, _ = await asyncio.wait([task, lost], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task not in done:
            task.cancel()
            raise BleakError("Not connected: the link dropped during a GATT operation")
        try:
            return task.result()
        except ATT_Error as exc:
            raise BleakGATTProtocolError(int(exc.error_code)) from exc
        except core.TimeoutError as exc:
            raise TimeoutError("GATT operation timed out") from exc
        except core.BaseBumbleError as exc:
            raise BleakError(f"GATT operation failed: {exc}") from exc

    def _collect_services(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service_proxy in peer.services:
            service = BleakGATTService(service_proxy, service_proxy.handle, uuid_string(service_proxy.uuid))
            collection.add_service(service)
            for char_proxy in service_proxy.characteristics:
                characteristic = BleakGATTCharacteristic(
                    char_proxy,
                    char_proxy.handle,
                    uuid_string(char_proxy.uuid),
                    _property_names(int(char_proxy.properties)),
                    lambda: self.mtu_size - 3,
                    service,
                )
                collection.add_characteristic(characteristic)
                for descriptor_proxy in char_proxy.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor_proxy,
                            descriptor_proxy.handle,
                            uuid_string(descriptor_proxy.type),
                            characteristic,
                        )
                    )
        return collection

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        return bytearray(await self._guard(peer.read_value(characteristic.handle)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        return bytearray(await self._guard(peer.read_value(descriptor.handle)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._require_peer()
        await self._guard(peer.write_value(characteristic.handle, bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        peer = self._require_peer()
        await self._guard(peer.write_value(descriptor.handle, bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        self._require_peer()
        proxy = characteristic.obj

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        await self._guard(proxy.subscribe(deliver, prefer_notify=True))
        self._subscribers[characteristic.handle] = deliver

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._require_peer()
        deliver = self._subscribers.pop(characteristic.handle, None)
        await self._guard(characteristic.obj.unsubscribe(deliver))
