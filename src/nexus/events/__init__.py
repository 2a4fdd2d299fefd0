"""Events: detectors of slow oscillations, spindles, rapid eye movements, arousals, heart rate.

Pure: arrays in, results out.
"""
