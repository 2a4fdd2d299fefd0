"""Client profiles of the synthetic sleeper: who is sleeping, validated, with named presets."""

from __future__ import annotations

from dataclasses import dataclass, replace

from nexus.core.checks import check_number, check_option
from nexus.core.errors import InvalidInputError

CHRONOTYPES = ("morning", "intermediate", "evening")


@dataclass(frozen=True)
class SleeperProfile:
    """Traits of a synthetic client that shape the night.

    Attributes
    ----------
    name : str
        A label (the preset name, or ``"custom"``).
    age : float
        Age in years (5–100). Older sleepers get less N3, more wake and N1, longer sleep-onset latency.
    male : bool
        Sex given to stagers as metadata (YASA's ``male``).
    chronotype : str
        ``"morning"``, ``"intermediate"`` or ``"evening"``: evening types fall asleep later at a fixed bedtime.
    sleep_pressure : float
        0–1, homeostatic pressure at lights-out: higher means faster sleep onset and more N3.
    stress : float
        0–1: longer sleep onset, more awakenings and arousals.
    nightmare_propensity : float
        0–1: expected distress episodes per night is about ``3 × nightmare_propensity`` (Poisson).
    sound_sensitivity : float
        0–1: how easily sounds arouse the sleeper (0.5 = average).
    """

    name: str = "custom"
    age: float = 35.0
    male: bool = True
    chronotype: str = "intermediate"
    sleep_pressure: float = 0.5
    stress: float = 0.2
    nightmare_propensity: float = 0.01
    sound_sensitivity: float = 0.5

    def __post_init__(self) -> None:
        check_number("age", self.age, ge=5, le=100, unit="years")
        check_option("chronotype", self.chronotype, CHRONOTYPES)
        for what in ("sleep_pressure", "stress", "nightmare_propensity", "sound_sensitivity"):
            check_number(what, getattr(self, what), ge=0, le=1)
        if not isinstance(self.male, bool):
            raise InvalidInputError(f"Invalid value for 'male': expected True or False, got {self.male!r}.")

    def with_(self, **changes: object) -> SleeperProfile:
        """Return a copy with some traits changed (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def metadata(self) -> dict[str, int]:
        """Age and sex as YASA's ``SleepStaging`` metadata (``{"age": 35, "male": 1}``)."""
        return {"age": round(self.age), "male": int(self.male)}


PRESETS: dict[str, SleeperProfile] = {
    "typical_adult": SleeperProfile("typical_adult", 35, True, "intermediate", 0.5, 0.2, 0.01, 0.5),
    "older_adult": SleeperProfile("older_adult", 70, False, "morning", 0.4, 0.25, 0.01, 0.6),
    "insomniac": SleeperProfile("insomniac", 45, False, "evening", 0.3, 0.8, 0.2, 0.8),
    "nightmare_prone": SleeperProfile("nightmare_prone", 28, False, "evening", 0.5, 0.5, 0.8, 0.6),
    "teen": SleeperProfile("teen", 16, True, "evening", 0.8, 0.2, 0.15, 0.4),
}
"""Named profiles; see :func:`get_profile`.

Checked against published figures for each group (:func:`get_profile` gives the numbers a night of each
preset has; ``tests/sources/test_synthetic_profile.py`` pins them):

* Distress episodes (nightmares with autonomic arousal). Only 2–6 % of adults report weekly nightmares and
  8–29 % monthly ones (Nielsen & Zadra, in Principles and Practice of Sleep Medicine, 5th ed., 2011; Levin &
  Nielsen 2007, Psychol Bull), which makes a nightmare on about 1–3 % of a typical adult's nights. The
  typical and older adults therefore have ``nightmare_propensity`` 0.01 (Poisson mean 0.03 a night: a
  distress episode on ≈ 3 % of nights; the former 0.1 gave 26 %). ``nightmare_prone`` (0.8, ≈ 2.4 a night)
  stands for nightmare disorder, to rehearse alarms.
* Sleep efficiency (PSG, lights-out to lights-on). Insomnia disorder: about 75–85 %, several points below
  good sleepers (≈ 85–95 %) in the meta-analysis of polysomnographic studies by Baglioni et al. 2014 (Sleep
  Med Rev 18:195). The ``insomniac`` preset gives a mean of ≈ 80 % over seeds (10th–90th percentile ≈
  73–88 %; seed 0 happens to be an 88 % night), ``typical_adult`` ≈ 90 %; left unchanged.
"""


def get_profile(name: str | SleeperProfile) -> SleeperProfile:
    """Return the preset called ``name`` (a :class:`SleeperProfile` is returned unchanged).

    Raises
    ------
    InvalidInputError
        The name is not a preset; the message suggests the closest one.
    """
    if isinstance(name, SleeperProfile):
        return name
    return PRESETS[check_option("profile", str(name), PRESETS)]
