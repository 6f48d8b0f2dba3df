"""The kernel_runs check: science code a TESS user runs, in a kernel of the user image, offline.

A synthetic TESS light curve (2-minute cadence, 27 days: one sector) with a planet's transits
is folded at the planet's period by lightkurve and measured with astropy units and numpy; the
check fails if an import fails or the transit is not found where it was put.
"""

import astropy.units as u
import lightkurve as lk
import numpy as np

PERIOD, DEPTH, DURATION = 3.5, 0.01, 0.12  # days, fraction, days

time = np.arange(0, 27, 2 / 60 / 24)  # days
flux = np.random.default_rng(42).normal(1.0, 0.001, time.size)
flux[(time % PERIOD) < DURATION] -= DEPTH
curve = lk.LightCurve(time=time, flux=flux)

periodogram = curve.to_periodogram(method="bls", period=np.linspace(1, 10, 2000), duration=DURATION)
found = periodogram.period_at_max_power.to_value(u.day)
folded = curve.fold(period=found, epoch_time=DURATION / 2)
depth = 1 - np.median(folded.flux[np.abs(folded.phase.value) < DURATION / 4].value)

assert abs(found - PERIOD) < 0.01, f"period {found:.3f} d, expected {PERIOD} d"
assert abs(depth - DEPTH) < 0.002, f"depth {depth:.4f}, expected {DEPTH}"
print(f"transit found: period {found:.3f} d, depth {depth * 1e6:.0f} ppm")
