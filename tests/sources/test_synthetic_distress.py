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



def test_an_awakening_at_the_end_of_the_night_stops_at_its_last_epoch():
    # a 15-min night of REM: the one nightmare can only begin in epochs 20-21, so its awakening (2-6 epochs of W,
    # then N1) may run past the night's end; the hypnogram keeps its length, W after the episode
    prof = get_profile("nightmare_prone")
    for seed in range(20):
        stages = np.full(30, Stage.R, dtype=np.int8)
        dis = place_distress(prof, stages, np.random.default_rng(seed), 1)
        assert len(dis) == 1 and stages.size == 30
        after = int((dis.onset[0] + dis.duration[0]) // EPOCH_S) + 1
        if dis.woke[0]:
            assert (stages[after : after + 2] == Stage.W).all()
        else:
            assert (stages == Stage.R).all()
