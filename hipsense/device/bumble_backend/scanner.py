"""``BaseBleakScanner`` on Bumble: advertisements from the virtual radio, as bleak reports them."""

from __future__ import annotations

import logging
import uuid as uuid_module
from typing import Any, ClassVar, Literal

from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement

from hipsense.device.bumble_backend._radio import VirtualRadio

logger = logging.getLogger(__name__)

__all__ = ["BumbleScanner", "address_string", "uuid_string"]

_UUID_LIST_TYPES = (
    AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    AdvertisingData.Type.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)
_SERVICE_DATA_TYPES = (
    AdvertisingData.Type.SERVICE_DATA_16_BIT_UUID,
    AdvertisingData.Type.SERVICE_DATA_32_BIT_UUID,
    AdvertisingData.Type.SERVICE_DATA_128_BIT_UUID,
)


def uuid_string(uuid: UUID) -> str:
    """A Bumble UUID as bleak writes UUIDs: full 128-bit, lower case.

    16- and 32-bit UUIDs expand in the SIG base; 128-bit ones are kept verbatim, so a vendor base
    such as WitMotion's ``…9a34fb`` survives.
    """
    return str(uuid_module.UUID(bytes=bytes(reversed(uuid.to_bytes(force_128=True)))))


def address_string(address: Any) -> str:
    """``AA:BB:CC:DD:EE:FF`` without Bumble's ``/P`` type suffix, as bleak prints addresses."""
    return str(address.to_string(with_type_qualifier=False))


def advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    """Translate one Bumble advertisement into bleak's :class:`AdvertisementData`."""
    data = advertisement.data
    name = data.get(AdvertisingData.Type.COMPLETE_LOCAL_NAME) or data.get(
        AdvertisingData.Type.SHORTENED_LOCAL_NAME
    )
    service_uuids: list[str] = []
    for ad_type in _UUID_LIST_TYPES:
        for uuid_list in data.get_all(ad_type):
            for uuid in uuid_list:
                text = uuid_string(uuid)
                if text not in service_uuids:
                    service_uuids.append(text)
    service_data: dict[str, bytes] = {}
    for ad_type in _SERVICE_DATA_TYPES:
        for uuid, payload in data.get_all(ad_type):
            service_data[uuid_string(uuid)] = bytes(payload)
    manufacturer_data = {
        company: bytes(payload)
        for company, payload in data.get_all(AdvertisingData.Type.MANUFACTURER_SPECIFIC_DATA)
    }
    tx_power = data.get(AdvertisingData.Type.TX_POWER_LEVEL)
    return AdvertisementData(
        local_name=str(name) if name is not None else None,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=service_uuids,
        tx_power=int(tx_power) if tx_power is not None else None,
        rssi=int(advertisement.rssi),
        platform_data=(advertisement,),
    )


class BumbleScanner(BaseBleakScanner):
    """Scanner backend bound to a :class:`VirtualRadio` (use ``radio.scanner_backend``)."""

    radio: ClassVar[VirtualRadio]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,  # bluez=, cb= and other platform options do not apply here
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._scanning_mode = scanning_mode
        self._running = False

    async def start(self) -> None:
        """Start receiving advertisements; clears :attr:`seen_devices` as bleak requires."""
        self.seen_devices = {}
        self._running = True
        await self.radio.add_scan_listener(self._on_advertisement)

    async def stop(self) -> None:
        """Stop receiving advertisements."""
        self._running = False
        await self.radio.remove_scan_listener(self._on_advertisement)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        if not self._running:
            return
        adv = advertisement_data(advertisement)
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        address = address_string(advertisement.address)
        device = self.create_or_update_device(
            address, address, adv.local_name, advertisement.address, adv
        )
        self.call_detection_callbacks(device, adv)
