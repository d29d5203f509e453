"""GPIO output pulse for a reject gate or a stack light (gpiozero, BCM pin numbers).

Each alert drives the pin active for `pulse_ms`, then inactive, in gpiozero's background thread,
so the pulse never holds up inspection. It is `immediate`: the pipeline pulses it as soon as a
frame is flagged, before the second-stage classifier, the snapshots and the other sinks, so the
delay from frame to gate does not depend on PNG encoding or disk. An alert during a pulse restarts
it. `active_high: false` is for relay boards that switch on a low level. For a dry run on a desktop
set GPIOZERO_PIN_FACTORY=mock.
It has no `review()`: an operator's verdict on an alert never pulses the gate again.
"""

from __future__ import annotations

from edge.alert import Alert
from edge.errors import EdgeError
from edge.sinks.base import one_line, problem


class GpioSink:
    name = "gpio"
    # the pipeline pulses it as soon as a frame is flagged, before snapshots and the other sinks
    immediate = True

    def __init__(self, pin: int, pulse_ms: int = 200, active_high: bool = True, pin_factory=None):
        try:
            from gpiozero import DigitalOutputDevice
        except ImportError:
            raise EdgeError("the GPIO sink needs gpiozero: pip install 'edge-inspect[gpio]'") from None
        self.pin = pin
        self.pulse_s = max(pulse_ms, 1) / 1000.0
        self.pulses = 0
        try:
            self._device = DigitalOutputDevice(
                pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
            )
        except Exception as exc:  # noqa: BLE001 - gpiozero raises many kinds (BadPinFactory, PinInvalidPin, ...)
            raise EdgeError(
                f"cannot drive GPIO pin {pin} (BCM): {one_line(exc)}; on a Pi install python3-lgpio and add the "
                "service user to the gpio group, or set GPIOZERO_PIN_FACTORY=mock for a dry run"
            ) from None

    def emit(self, alert: Alert) -> None:
        try:
            self._device.blink(on_time=self.pulse_s, off_time=0, n=1, background=True)
            self.pulses += 1
        except Exception as exc:  # noqa: BLE001
            problem(
                f"gpio: pulse on pin {self.pin} failed for alert {alert.id}: {one_line(exc)}", key=f"gpio:{self.pin}"
            )

    def close(self) -> None:
        try:
            # Let a pulse in progress finish so a reject gate is not left half-actuated.
            thread = getattr(self._device, "_blink_thread", None)
            if thread is not None:
                thread.join(self.pulse_s + 0.5)
            self._device.off()
            self._device.close()
        except Exception as exc:  # noqa: BLE001
            problem(f"gpio: closing pin {self.pin}: {one_line(exc)}")
