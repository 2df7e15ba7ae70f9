"""RSSI smoothing: a time-aware exponentially weighted moving average. Pure.

Why an EWMA (and not a median or a Kalman filter)
-------------------------------------------------
* RSSI from a phone or tag in a shop is noisy (body shadowing and multipath fade it by 10-20 dB
  for a few hundred milliseconds) but the quantity we want (near / not near) moves slowly. Any
  low-pass filter does; the question is cost and predictability.
* State is two floats per (identity, zone) and one ``exp`` per sighting: the tracker must keep
  up with 20,000 sightings a second on one core together with parsing.
* The weight of a sighting depends on the time since the previous one,
  ``alpha = 1 - exp(-dt / tau)``, so the filter has the same time constant ``tau`` at 1 Hz and
  at 10 Hz (a fixed-alpha EWMA or an N-sample median would be ten times slower at 1 Hz than at
  10 Hz) and its lag is a known figure: a step of the raw signal from ``a`` to ``b`` carries the
  smoothed value across a threshold ``t`` after ``-tau * ln((b - t) / (b - a))`` seconds.
* A one-dimensional Kalman filter with a constant-position model and fixed noise converges to
  exactly this EWMA; the extra machinery buys nothing without a motion model.
* A median would reject single deep fades better, but needs a window buffer per track and its
  lag depends on the sighting rate; the hysteresis gap and the confirmation time of the
  tracker absorb single fades instead.

Averaging is done in dBm (the log domain), as RSSI is reported (Bluetooth Core Spec, Vol 4
Part E, 7.7.65.2: a signed byte, -127..+20 dBm): a deep fade weighs less than it would in
milliwatts, which is the robustness we want.
"""

from __future__ import annotations

import math

# Two sightings at the same instant (two scanners of one zone, reordered delivery) still each
# count a little instead of not at all: dt is floored to this.
MIN_DT_S = 0.02


def alpha(dt_s: float, tau_s: float) -> float:
    """The weight of a new sample ``dt_s`` seconds after the previous one."""
    return 1.0 - math.exp(-max(dt_s, MIN_DT_S) / tau_s)


def step(smoothed: float, sample: float, dt_s: float, tau_s: float) -> float:
    """The smoothed value after ``sample`` arrived ``dt_s`` seconds after the last one."""
    return smoothed + alpha(dt_s, tau_s) * (sample - smoothed)


def crossing_delay_s(*, start: float, target: float, threshold: float, tau_s: float) -> float:
    """Seconds for the smoothed value to cross ``threshold`` after a step from ``start`` to
    ``target`` (continuous-time approximation); ``inf`` if it never does."""
    if (threshold - start) * (threshold - target) >= 0:
        return 0.0 if threshold == start else math.inf
    return -tau_s * math.log((target - threshold) / (target - start))
