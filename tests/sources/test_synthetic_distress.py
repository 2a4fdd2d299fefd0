"""Where the synthetic sleeper's distress episodes (nightmares) fall in its night."""

import numpy as np

from nexus.core.stages import EPOCH_S, Stage
from nexus.sources.synthetic.architecture import generate_hypnogram
from nexus.sources.synthetic.profile import get_profile
from nexus.sources.synthetic.psyche import place_distress


def _nights(n_episodes: int, seeds: range):
    prof = get_profile("nightmare_prone")
    for seed in seeds:
        rng = np.random.default_rng(seed)
        stages = generate_hypnogram(prof, 8 * 120, rng)
        yield stages, place_distress(prof, stages, rng, n_episodes)


def test_every_nightmare_begins_in_sleep_after_the_one_before_and_its_awakening():
    # four episodes a night: drawn independently, some fell inside the episode before or in the wake epochs its
    # awakening wrote into the hypnogram (a nightmare in wake, and two alarms for one surge)
    episodes = 0
    for stages, dis in _nights(4, range(40)):
        assert len(dis) == 4  # there is room for all of them in an 8-h night
        ep = (dis.onset // EPOCH_S).astype(int)
        assert np.isin(stages[ep], (Stage.R, Stage.N1, Stage.N2)).all()
        ends = dis.onset + dis.duration
        assert (dis.onset[1:] >= ends[:-1] + EPOCH_S).all()
        episodes += len(dis)
    assert episodes == 160

