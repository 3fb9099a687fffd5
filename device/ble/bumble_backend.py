"""A bleak backend built on bumble's host stack over an in-process virtual radio.

CI machines have no BlueZ, no D-Bus and no kernel Bluetooth. This backend lets the
driver's real :class:`bleak.BleakClient` / :class:`bleak.BleakScanner` calls travel
through a real ATT/GATT stack anyway: bumble's host and link-layer controller run in
this process, and every controller is attached to one :class:`bumble.link.LocalLink`
(the "air"). A peripheral — such as the firmware mock in :mod:`firmware_mocks.ble` —
adds its own controller to the same air; this backend's central connects to it by
address, exchanges the ATT MTU and discovers services like a phone would.

Pass the classes to bleak::

    BleakClient(address, backend=BumbleBleakClient)
    BleakScanner(service_uuids=[...], backend=BumbleBleakScanner)

Bumble's link schedules work with ``loop.call_soon``, so there is one air per event
loop (:func:`air_for_running_loop`); peripherals and centrals must share that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid as uuidlib
import weakref
from collections.abc import Callable
from typing import Any

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import (
    AdvertisementData,
    AdvertisementDataCallback,
    BaseBleakScanner,
)
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.controller import Controller
from bumble.device import Advertisement, Connection, Device, DeviceConfiguration, Peer
from bumble.gatt import Characteristic
from bumble.gatt_client import CharacteristicProxy
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

#: MTU the central asks for; the peripheral's own maximum decides the outcome.
DEFAULT_REQUESTED_MTU = 247

_PROPERTY_NAMES = {
    Characteristic.Properties.BROADCAST: "broadcast",
    Characteristic.Properties.READ: "read",
    Characteristic.Properties.WRITE_WITHOUT_RESPONSE: "write-without-response",
    Characteristic.Properties.WRITE: "write",
    Characteristic.Properties.NOTIFY: "notify",
    Characteristic.Properties.INDICATE: "indicate",
    Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES: "authenticated-signed-writes",
    Characteristic.Properties.EXTENDED_PROPERTIES: "extended-properties",
}


def uuid_str(value: core.UUID) -> str:
    """bumble UUID → bleak's normalised lower-case 128-bit string."""
    little_endian = value.to_bytes(force_128=True)
    return str(uuidlib.UUID(bytes=bytes(reversed(little_endian))))


def _address(text: str) -> hci.Address:
    try:
        return hci.Address(text.upper(), hci.Address.RANDOM_DEVICE_ADDRESS)
    except (ValueError, core.BaseBumbleError) as exc:
        raise BleakError(f"not a Bluetooth address: {text!r} ({exc})") from None


class VirtualAir:
    """One in-process radio medium and the central (host side) attached to it."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]
        self._central: Device | None = None
        self._central_lock = asyncio.Lock()
        self._controllers: dict[int, Controller] = {}

    def attach(self, name: str, address: str, config: DeviceConfiguration | None = None) -> Device:
        """A new, powered-off bumble :class:`Device` on its own controller on this air."""
        controller = Controller(f"{name}-{next(self._ids)}", link=self.link)
        host = Host(controller, AsyncPipeSink(controller))
        config = config or DeviceConfiguration(name=name)
        config.address = hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
        device = Device(config=config, host=host)
        self._controllers[id(device)] = controller
        return device

    def detach(self, device: Device) -> None:
        """Take ``device``'s controller off the air (it hears and sends nothing more)."""
        controller = self._controllers.pop(id(device), None)
        if controller is not None and controller in self.link.controllers:
            self.link.remove_controller(controller)

    async def central(self) -> Device:
        """The shared central device, created and powered on at first use."""
        async with self._central_lock:
            if self._central is None:
                device = self.attach("central", "F0:F1:F2:F3:F4:F5")
                await device.power_on()
                self._central = device
            return self._central

    def discard_central(self, device: Device) -> None:
        """Retire ``device`` as the central; the next :meth:`central` call makes a fresh one.

        bumble's virtual controller ignores LE Create Connection Cancel, so after a
        connection attempt that timed out it refuses any new one (Command Disallowed).
        """
        if self._central is device:
            self._central = None
            self.detach(device)


_AIRS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, VirtualAir] = (
    weakref.WeakKeyDictionary()
)


def air_for_running_loop() -> VirtualAir:
    """The virtual air of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    air = _AIRS.get(loop)
    if air is None:
        air = _AIRS[loop] = VirtualAir()
    return air


class BumbleBleakScanner(BaseBleakScanner):
    """Scans the virtual air with bumble's central and reports bleak advertisement data."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode != "passive"
        self._central: Device | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        central = await air_for_running_loop().central()
        self._central = central
        central.on(central.EVENT_ADVERTISEMENT, self._on_advertisement)
        if not central.scanning:
            await central.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        central, self._central = self._central, None
        if central is None:
            return
        central.remove_listener(central.EVENT_ADVERTISEMENT, self._on_advertisement)
        if central.scanning:
            await central.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement.data
        name = data.get(data.COMPLETE_LOCAL_NAME) or data.get(data.SHORTENED_LOCAL_NAME)
        uuids: list[str] = []
        for kind in (
            data.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            data.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            data.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            data.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        ):
            for found in data.get_all(kind):
                items = found if isinstance(found, list) else [found]
                uuids.extend(uuid_str(u) for u in items if isinstance(u, core.UUID))
        if not self.is_allowed_uuid(uuids):
            return
        address = advertisement.address.to_string(False)
        local_name = name if isinstance(name, str) else None
        adv = AdvertisementData(
            local_name=local_name,
            manufacturer_data={},
            service_data={},
            service_uuids=uuids,
            tx_power=None,
            rssi=int(advertisement.rssi),
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(
            address, address, local_name, advertisement.address, adv
        )
        self.call_detection_callbacks(device, adv)


class BumbleBleakClient(BaseBleakClient):
    """A GATT client over bumble's central on the virtual air.

    Extra keyword argument (passed through :class:`bleak.BleakClient`): ``mtu``, the
    ATT MTU to request after connecting (default 247).
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        mtu: int = DEFAULT_REQUESTED_MTU,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._requested_mtu = mtu
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._closing = False
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    # --- connection ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.address

    @property
    def mtu_size(self) -> int:
        if self._connection is None:
            return att.ATT_DEFAULT_MTU
        return int(self._connection.att_mtu)

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        air = air_for_running_loop()
        central = await air.central()
        try:
            # bumble's virtual controller never answers LE Create Connection Cancel, so
            # bumble's own timeout would hang: bound it here and retire that central.
            async with asyncio.timeout(self._timeout):
                connection = await central.connect(_address(self.address), timeout=None)
        except (TimeoutError, core.TimeoutError) as exc:
            air.discard_central(central)
            # As bleak's platform backends do: a connection that never completes times out.
            raise TimeoutError(f"no connection to {self.address} on the virtual link") from exc
        except core.BaseBumbleError as exc:
            air.discard_central(central)
            raise BleakError(f"cannot connect to {self.address}: {exc!r}") from None
        self._connection = connection
        self._closing = False
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            async with asyncio.timeout(self._timeout):
                peer = Peer(connection)
                await peer.request_mtu(self._requested_mtu)
                await peer.discover_services()
                for service in peer.services:
                    await peer.discover_characteristics(service=service)
                    for characteristic in service.characteristics:
                        await peer.discover_descriptors(characteristic)
        except (TimeoutError, core.BaseBumbleError) as exc:
            await self.disconnect()
            raise BleakError(f"service discovery failed on {self.address}: {exc!r}") from None
        self._peer = peer
        self.services = self._collect_services(peer)

    def _collect_services(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            bleak_service = BleakGATTService(service, service.handle, uuid_str(service.uuid))
            collection.add_service(bleak_service)
            for proxy in service.characteristics:
                names = [n for flag, n in _PROPERTY_NAMES.items() if proxy.properties & flag]
                characteristic = BleakGATTCharacteristic(
                    proxy,
                    proxy.handle,
                    uuid_str(proxy.uuid),
                    names,  # type: ignore[arg-type]
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(characteristic)
                for descriptor in proxy.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor, descriptor.handle, uuid_str(descriptor.type), characteristic
                        )
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self._peer = None
        self._subscribers.clear()
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        with contextlib.suppress(core.BaseBumbleError, TimeoutError):
            async with asyncio.timeout(self._timeout):
                await connection.disconnect()
        self._connection = None
        self._peer = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("pairing is not needed on the virtual link")

    async def unpair(self) -> None:
        raise NotImplementedError("pairing is not needed on the virtual link")

    # --- I/O ----------------------------------------------------------------------------

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"{self.address} is not connected")
        return self._peer

    async def _guard(self, operation: Any) -> Any:
        # Bumble errors become bleak's, so the driver translates one family only.
        try:
            return await operation
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from None
        except core.BaseBumbleError as exc:
            raise BleakError(f"{self.address}: {exc!r}") from None

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        value = await self._guard(self._require_peer().read_value(characteristic.obj))
        return bytearray(value)

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        value = await self._guard(self._require_peer().read_value(descriptor.handle))
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        await self._guard(
            self._require_peer().write_value(
                characteristic.handle, bytes(data), with_response=response
            )
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        await self._guard(
            self._require_peer().write_value(descriptor.handle, bytes(data), with_response=True)
        )

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        proxy: CharacteristicProxy[bytes] = characteristic.obj

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        self._subscribers[characteristic.handle] = deliver
        await self._guard(self._require_peer().subscribe(proxy, deliver))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        deliver = self._subscribers.pop(characteristic.handle, None)
        if self._peer is not None:
            await self._guard(self._peer.unsubscribe(characteristic.obj, deliver))
