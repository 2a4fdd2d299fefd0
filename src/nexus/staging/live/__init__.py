"""Live (causal) sleep staging, batched across sessions.

:class:`LiveStager` takes blocks of ``(n_sessions, n_channels, n_samples)`` as they stream in and,
every 5 s of data, re-estimates the stage of the epoch in progress for every session at once.
Each estimate uses only samples up to its own end:

* signals are resampled to 100 Hz with a causal anti-alias filter and linear interpolation,
  then band-passed 0.4-30 Hz with a causal IIR filter whose state is carried between blocks;
* YASA's per-epoch features are computed from per-5-s-block sufficient statistics (power sums,
  sign changes, ordinal patterns, Higuchi curve lengths, block quartiles) and from 5-s Welch
  segments with 2.5-s steps, so each update touches only the newest 5 s of samples (the same
  implementation as the offline features, :mod:`nexus.staging.window`);
* YASA's centred 7.5-min triangular smoothing becomes its trailing half (current epoch and the
  7 before it), the 2-min past mean stays as it is, and the night-wide robust z-score becomes a
  running one: median and 5th/95th percentiles of the night so far, from a history of at most
  128 epochs per session that is thinned by half whenever it fills (so it always spans the whole
  night evenly), refreshed every few epochs for a rotating share of the sessions, and blended
  with a population prior (``live_prior.json``, made by ``bench/live_prior.py`` from synthetic
  nights) that weighs as much as ``prior_epochs`` epochs, so that the first hour is not scaled
  by wake alone, plus a quarter epoch per epoch of the expected night not seen yet (the night so
  far is a biased sample of the whole night that the offline stager scales by);
* ``time_hour`` is the time since the session started; ``time_norm`` divides it by the expected
  night length (``night_hours``).

The per-epoch stage is final once the epoch has ended (``LiveEstimate.final``); the stages of
finished epochs are kept (:meth:`LiveStager.hypnogram`). All state lives in arrays with the
session on the leading axis; there is no per-session Python loop. Large batches are split into
shards of sessions staged side by side on threads (``workers``, one per CPU core by default;
the per-sample filters and statistics are compiled numba kernels that release the GIL), with the
same estimates as one shard.

The stager is made of parts, one module each: :mod:`~nexus.staging.live.frontend` (filters and
resampling), :mod:`~nexus.staging.live.blocks` (block statistics and spectra, the window
features), :mod:`~nexus.staging.live.scaling` (smoothing history and running scaling) and
:mod:`~nexus.staging.live.stager` (one shard's estimates, the sharding wrapper, causal staging
of a recording).
"""

from nexus.staging.live._layout import BLOCK_S
from nexus.staging.live.scaling import PRIOR_FILE, load_prior
from nexus.staging.live.stager import MIN_SHARD, LiveEstimate, LiveStager, stage_causal

__all__ = ["BLOCK_S", "MIN_SHARD", "PRIOR_FILE", "LiveEstimate", "LiveStager", "load_prior", "stage_causal"]
