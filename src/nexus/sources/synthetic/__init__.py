"""The synthetic sleeper: realistic overnight PSG with psyche profiles, faults and closed-loop responses.

Public API
----------
:func:`synthesize_night`
    One whole night (signals + ground truth) → :class:`SyntheticNight` (``.to_recording()`` for EDF+).
:class:`SyntheticFleet`
    N sessions streamed chunk by chunk, vectorised, with :meth:`~SyntheticFleet.play` for sounds.
:func:`synthesize_batch`, :func:`iter_batch`
    N whole nights at once.
:class:`SyntheticSource`, :class:`FleetFeed`
    A :class:`~nexus.sources.base.Source` for one session (alone or a slot of a shared fleet), paced by a clock.
:class:`SleeperProfile`, :data:`PRESETS`, :func:`get_profile`
    Who sleeps.
:class:`Fault`, :func:`schedule_faults`
    Technical faults.
"""

from nexus.sources.synthetic.batch import iter_batch, synthesize_batch
from nexus.sources.synthetic.faults import FAULT_KINDS, Fault, schedule_faults
from nexus.sources.synthetic.fleet import SyntheticFleet
from nexus.sources.synthetic.night import SyntheticNight, synthesize_night
from nexus.sources.synthetic.profile import PRESETS, SleeperProfile, get_profile
from nexus.sources.synthetic.signals import CHANNELS
from nexus.sources.synthetic.stream import FleetFeed, SyntheticSource
from nexus.sources.synthetic.truth import SleepTruth

__all__ = [
    "CHANNELS",
    "FAULT_KINDS",
    "PRESETS",
    "Fault",
    "FleetFeed",
    "SleepTruth",
    "SleeperProfile",
    "SyntheticFleet",
    "SyntheticNight",
    "SyntheticSource",
    "get_profile",
    "iter_batch",
    "schedule_faults",
    "synthesize_batch",
    "synthesize_night",
]
